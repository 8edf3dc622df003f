"""The live overview: services, campaigns, users and totals in one snapshot, and its lists paged."""

from __future__ import annotations

from typing import Annotated

import msgspec

from api.paging import Limit, Offset
from api.routing import Call, Routes
from engine.live.overview import CampaignView, Overview, ServiceLiveState, ServiceView, UserView, build_overview
from engine.live.overview_pages import campaigns_page, first_pages, services_page, users_page
from engine.store.campaign_models import CampaignStatus
from engine.store.rows import Page

routes = Routes()

Search = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="substring, any case")]


class OverviewQuery(msgspec.Struct, forbid_unknown_fields=True):
    # Items of each list (services, campaigns, users) in the answer; `*_total` says how many there are.
    limit: Limit = 100


class ServicesQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    offset: Offset = 0
    state: ServiceLiveState | None = None
    # Part of the service's name.
    q: Search | None = None


class CampaignsQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    offset: Offset = 0
    status: CampaignStatus | None = None
    # Part of the campaign's name or its owner's username.
    q: Search | None = None


class UsersQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    offset: Offset = 0
    # Part of the username.
    q: Search | None = None


async def _snapshot(call: Call) -> Overview:
    """The caller's scope's snapshot, shared by every client of that scope for the cache's second."""
    d = call.deps
    viewer = None if call.me.is_admin else call.me.id
    assert d.overviews is not None
    return await d.overviews.get(viewer, lambda: build_overview(d.pool, d.clock.now(), d.settings.tz, viewer))


@routes.route("GET", "/monitor/overview",
              summary="Live snapshot: totals and the first `limit` services, campaigns and users (own scope for users)",
              access="user", query=OverviewQuery, response=Overview, tag="monitor")
async def overview(call: Call) -> Overview:
    return first_pages(await _snapshot(call), call.query.limit)


@routes.route("GET", "/monitor/services", summary="The overview's services, paged; filter by state and name",
              access="user", query=ServicesQuery, response=Page[ServiceView], tag="monitor")
async def overview_services(call: Call) -> Page[ServiceView]:
    q = call.query
    return services_page(await _snapshot(call), q.limit, q.offset, q.state, q.q)


@routes.route("GET", "/monitor/campaigns", summary="The overview's campaigns, paged; filter by status and name or owner",
              access="user", query=CampaignsQuery, response=Page[CampaignView], tag="monitor")
async def overview_campaigns(call: Call) -> Page[CampaignView]:
    q = call.query
    return campaigns_page(await _snapshot(call), q.limit, q.offset, q.status, q.q)


@routes.route("GET", "/monitor/users", summary="The overview's users, paged; filter by username",
              access="user", query=UsersQuery, response=Page[UserView], tag="monitor")
async def overview_users(call: Call) -> Page[UserView]:
    q = call.query
    return users_page(await _snapshot(call), q.limit, q.offset, q.q)
