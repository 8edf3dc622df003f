"""Engine actions on a sending service (admin): unfreeze after failures, reset today's quota."""

from __future__ import annotations

from api.routing import Call, Routes
from engine.domain.errors import ServiceUnavailable
from engine.store.service_models import Service
from engine.store.services import ServiceStore

routes = Routes()


def _engine(call: Call):  # type: ignore[no-untyped-def]
    if call.deps.engine is None:
        raise ServiceUnavailable("the dispatch engine is not running in this process")
    return call.deps.engine


async def _service(call: Call) -> Service:
    d = call.deps
    return await ServiceStore(d.pool, d.box, d.clock, d.settings.tz).get(call.id())


@routes.route("POST", "/services/{id}/unfreeze", summary="Lift an abnormal freeze (failures count back to 0)",
              access="admin", response=Service, tag="services")
async def unfreeze(call: Call) -> Service:
    service_id = call.id()
    await _service(call)  # 404 first
    await _engine(call).unfreeze(service_id, call.me.id)
    return await _service(call)


@routes.route("POST", "/services/{id}/reset-now", summary="Reset the service's daily quota now (logged)",
              access="admin", response=Service, tag="services")
async def reset_now(call: Call) -> Service:
    service_id = call.id()
    await _service(call)
    await _engine(call).reset_now(service_id, call.me.id)
    return await _service(call)
