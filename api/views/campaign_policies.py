"""A campaign's send window: when it may send (hours, weekdays, time zone)."""

from __future__ import annotations

from api.routing import Call, Routes
from engine.store.campaign_policies import SendWindowIn, SendWindowView, get_send_window, set_send_window
from engine.store.campaigns import Actor

routes = Routes()


@routes.route("GET", "/campaigns/{id}/send-window", summary="A campaign's send window and whether it is open now",
              response=SendWindowView, tag="campaigns")
async def get_window(call: Call) -> SendWindowView:
    d = call.deps
    return await get_send_window(d.pool, Actor(call.me.id, call.me.is_admin), call.id(), d.settings.tz, d.clock.now())


@routes.route("PUT", "/campaigns/{id}/send-window",
              summary="Set a campaign's send window; outside it the campaign waits, paused with OUTSIDE_SEND_WINDOW",
              body=SendWindowIn, response=SendWindowView, tag="campaigns")
async def put_window(call: Call) -> SendWindowView:
    return await _set(call, call.body)


@routes.route("DELETE", "/campaigns/{id}/send-window", summary="Remove a campaign's send window",
              response=SendWindowView, tag="campaigns")
async def delete_window(call: Call) -> SendWindowView:
    return await _set(call, None)


async def _set(call: Call, body: SendWindowIn | None) -> SendWindowView:
    d = call.deps
    campaign_id = call.id()
    result, status = await set_send_window(d.pool, Actor(call.me.id, call.me.is_admin), campaign_id, body,
                                           d.settings.tz, d.clock.now())
    if status != "pending" and d.engine is not None:
        await d.engine.campaign_changed(campaign_id)  # the leader re-reads the window
    return result
