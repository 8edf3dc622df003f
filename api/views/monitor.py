"""The live overview: services, campaigns, users and totals in one snapshot."""

from __future__ import annotations

from api.routing import Call, Routes
from engine.live.overview import Overview, build_overview

routes = Routes()


@routes.route("GET", "/monitor/overview", summary="Live snapshot of services, campaigns and users (own scope for users)",
              access="user", response=Overview, tag="monitor")
async def overview(call: Call) -> Overview:
    d = call.deps
    viewer = None if call.me.is_admin else call.me.id
    assert d.overviews is not None
    return await d.overviews.get(viewer, lambda: build_overview(d.pool, d.clock.now(), d.settings.tz, viewer))
