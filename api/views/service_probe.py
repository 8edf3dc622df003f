"""On-demand health probe of a sending service's credentials (admin)."""

from __future__ import annotations

import logging

from api.routing import Call, Routes
from engine.probes.service_probe import ProbeResult, probe_service
from engine.store.services import ServiceStore

routes = Routes()
log = logging.getLogger("edm.api.probe")


@routes.route("POST", "/services/{id}/probe",
              summary="Check the service's credentials with a cheap authenticated call (sends nothing)",
              access="admin", response=ProbeResult, tag="services")
async def probe(call: Call) -> ProbeResult:
    d = call.deps
    service_id = call.id()
    provider, creds, base_url = await ServiceStore(d.pool, d.box, d.clock, d.settings.tz).probe_target(service_id)
    result = await probe_service(str(service_id), provider, creds, base_url, d.clock.now())
    log.info("service_probed id=%s verdict=%s detail=%s operator=%s", service_id, result.verdict, result.detail,
             call.me.id)
    return result
