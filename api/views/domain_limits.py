"""Per-recipient-domain limits (domain groups) and the engine-wide per-minute cap: admins write,
any user reads (with the current usage); each change reaches the leading engine as a command."""

from __future__ import annotations

from api.paging import PageQuery
from api.routing import Call, Routes
from engine.store.contact_models import Deleted
from engine.store.domain_group_models import (
    DomainGroup,
    DomainGroupInBody,
    DomainGroupPatch,
    RateLimitIn,
    SendRateLimit,
)
from engine.store.domain_groups import DomainGroupStore
from engine.store.rows import Page

routes = Routes()


def _store(call: Call) -> DomainGroupStore:
    d = call.deps
    return DomainGroupStore(d.pool, d.settings.tz, d.settings.send_rate_limit)


async def _changed(call: Call) -> None:
    if call.deps.engine is not None:
        await call.deps.engine.domain_limits_changed()


@routes.route("POST", "/domain-groups", summary="Create a domain group: per-minute and/or per-day limits on its "
              "recipient domains (409 CONFLICT: the name, or a domain another group holds)", access="admin",
              body=DomainGroupInBody, response=DomainGroup, status=201, tag="policies")
async def create_group(call: Call) -> DomainGroup:
    group = await _store(call).create(call.body, call.deps.clock.now())
    await _changed(call)
    return group


@routes.route("GET", "/domain-groups", summary="List domain groups with their usage (last minute, today)",
              query=PageQuery, response=Page[DomainGroup], tag="policies")
async def list_groups(call: Call) -> Page[DomainGroup]:
    return await _store(call).page(call.query.limit, call.query.offset, call.deps.clock.now())


@routes.route("GET", "/domain-groups/{id}", summary="Get a domain group with its usage", response=DomainGroup,
              tag="policies")
async def get_group(call: Call) -> DomainGroup:
    return await _store(call).get(call.id(), call.deps.clock.now())


@routes.route("PATCH", "/domain-groups/{id}", summary="Change a domain group; `pattern` replaces its domains",
              access="admin", body=DomainGroupPatch, response=DomainGroup, tag="policies")
async def update_group(call: Call) -> DomainGroup:
    group = await _store(call).update(call.id(), call.body, call.deps.clock.now())
    await _changed(call)
    return group


@routes.route("DELETE", "/domain-groups/{id}", summary="Delete a domain group (its recipients are unlimited again)",
              access="admin", response=Deleted, tag="policies")
async def delete_group(call: Call) -> Deleted:
    await _store(call).delete(call.id())
    await _changed(call)
    return Deleted(call.id())


@routes.route("GET", "/engine/send-rate-limit", summary="The engine-wide cap on requests per minute (0 = none)",
              response=SendRateLimit, tag="policies")
async def get_rate_limit(call: Call) -> SendRateLimit:
    return await _store(call).rate_limit(call.deps.clock.now())


@routes.route("PUT", "/engine/send-rate-limit", summary="Set the engine-wide cap on requests per minute "
              "(0 = none; null = back to EDM_SEND_RATE_LIMIT)", access="admin", body=RateLimitIn,
              response=SendRateLimit, tag="policies")
async def put_rate_limit(call: Call) -> SendRateLimit:
    limit = await _store(call).set_rate_limit(call.body.per_minute, call.deps.clock.now())
    await _changed(call)
    return limit
