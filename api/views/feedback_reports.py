"""Feedback out: a campaign's delivery funnel, a service's bounce and complaint rates, daily
history per service, user or campaign, the user's suppression count, and retry of failures."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

import msgspec

from api.feedback_deps import event_writer, feedback_store, suppression_store
from api.routing import Call, Routes
from engine.domain.errors import NotFound, ServiceUnavailable
from engine.infra.queries import Q
from engine.store.campaigns import Actor, ensure_visible
from engine.store.feedback import Funnel, campaign_funnel
from engine.store.retry import retry_failed

routes = Routes()


class DailyQuery(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["service", "user", "campaign"]
    id: uuid.UUID
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30


class Retried(msgspec.Struct):
    campaign_id: uuid.UUID
    requeued: int


@routes.route("GET", "/campaigns/{id}/funnel", summary="A campaign's delivery funnel and rates",
              response=Funnel, tag="feedback")
async def funnel(call: Call) -> Funnel:
    campaign_id = call.id()
    await ensure_visible(call.deps.pool, Actor(call.me.id, call.me.is_admin), campaign_id)
    return await campaign_funnel(call.deps.pool, campaign_id)


@routes.route("GET", "/services/{id}/reputation", summary="A service's bounce and complaint rates over its "
              "last sends (the reputation guard's window)", access="admin", tag="feedback")
async def service_reputation(call: Call) -> dict[str, Any]:
    service_id = call.id()
    if await call.deps.pool.fetchval(Q["engine.service_exists"], service_id) is None:
        raise NotFound("service not found", field="id")
    return {"service_id": str(service_id), **await feedback_store(call.deps).service_rates(service_id)}


@routes.route("GET", "/reports/daily", summary="Daily sent, failed, delivered, bounced, complained",
              query=DailyQuery, tag="feedback")
async def daily(call: Call) -> dict[str, Any]:
    d = call.deps
    q: DailyQuery = call.query
    owner = None if call.me.is_admin else call.me.id
    if q.scope == "service" and not call.me.is_admin:
        owner = call.me.id  # a user sees only their own sends through the service
    if q.scope == "user" and not call.me.is_admin and q.id != call.me.id:
        raise NotFound("user not found", field="id")
    if q.scope == "campaign":
        await ensure_visible(d.pool, Actor(call.me.id, call.me.is_admin), q.id)
    since = d.clock.now() - timedelta(days=q.days)
    days = await feedback_store(d).daily(q.scope, q.id, owner, since, d.settings.business_tz)
    return {"scope": q.scope, "id": str(q.id), "days": days}


@routes.route("GET", "/me/suppression-count", summary="How many addresses are on your suppression list",
              tag="feedback")
async def my_suppression_count(call: Call) -> dict[str, int]:
    return {"suppressed": await suppression_store(call.deps).count(call.me.id)}


@routes.route("POST", "/campaigns/{id}/retry", summary="Re-send a finished campaign's retryable failures "
              "(same campaign, new attempt; reserves quota)", response=Retried, tag="feedback")
async def retry(call: Call) -> Retried:
    d = call.deps
    if d.engine is None:
        raise ServiceUnavailable("the dispatch engine is not running in this process")
    campaign_id = call.id()
    n = await retry_failed(d.pool, event_writer(d), campaign_id, call.me.id, call.me.is_admin, d.clock.now())
    await d.engine.campaign_requeued(campaign_id)
    return Retried(campaign_id, n)
