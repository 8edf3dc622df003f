"""Campaigns: save, edit and cancel pending ones; read them and their event log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from api.paging import Limit, Offset, PageQuery
from api.routing import Call, Routes
from api.validation import in_utc_range
from api.views.campaign_actions import progress_of
from engine.domain.errors import Forbidden, InvalidState
from engine.live.progress import Progress
from engine.store import campaigns
from engine.store.campaign_models import (
    Campaign,
    CampaignDetail,
    CampaignEvent,
    CampaignStatus,
)
from engine.store.campaigns import Actor, Plan
from engine.store.feedback import Funnel, campaign_funnel
from engine.store.rows import Page
from engine.domain.types import NOT_SPACE

routes = Routes()

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, extra_json_schema={"pattern": NOT_SPACE})]
# Duplicates are refused (engine.store.campaigns), so the document says uniqueItems.
TemplateIds = Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=20,
                                                      extra_json_schema={"uniqueItems": True})]
TagIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=100, extra_json_schema={"uniqueItems": True})]
When = Annotated[datetime, msgspec.Meta(tz=True, description="ISO 8601 with a time zone")]


class CampaignCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    sender_id: uuid.UUID
    template_ids: TemplateIds
    # Tag ids: any include tag (every contact when empty), none of the exclude tags.
    include_tags: TagIds = []
    exclude_tags: TagIds = []
    # Null = now.
    scheduled_at: When | None = None


class CampaignUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields given change; `scheduled_at: null` means now."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    sender_id: uuid.UUID | msgspec.UnsetType = msgspec.UNSET
    template_ids: TemplateIds | msgspec.UnsetType = msgspec.UNSET
    include_tags: TagIds | msgspec.UnsetType = msgspec.UNSET
    exclude_tags: TagIds | msgspec.UnsetType = msgspec.UNSET
    scheduled_at: When | None | msgspec.UnsetType = msgspec.UNSET


class CampaignView(CampaignDetail, kw_only=True):
    """A campaign's detail with its live progress (counts, rate, ETA, pause reason and message)."""

    progress: Progress
    # feedback: delivered, opened, clicked, bounced, complained, unsubscribed (and rates)
    funnel: Funnel


class CampaignQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 50
    offset: Offset = 0
    status: CampaignStatus | None = None
    # Administrators only: every user's campaigns.
    all: bool = False


def _actor(call: Call) -> Actor:
    return Actor(call.me.id, call.me.is_admin)


async def _quota_changed(call: Call, user_id: uuid.UUID) -> None:
    """Tell a running engine, whose hot copy of the user's quota is now stale."""
    if call.deps.engine is not None:
        await call.deps.engine.quota_changed(user_id)


async def _saved(call: Call, campaign_id: uuid.UUID) -> None:
    """Tell a running engine, so a due campaign starts now rather than at its next poll."""
    if call.deps.engine is not None:
        await call.deps.engine.campaign_saved(campaign_id)


async def _view(call: Call, detail: CampaignDetail) -> CampaignView:
    fields = msgspec.structs.asdict(detail)
    # Side by side on two pool connections: the detail is the API's slowest read under load.
    progress, funnel = await asyncio.gather(progress_of(call, detail.id), campaign_funnel(call.deps.pool, detail.id))
    return CampaignView(**fields, progress=progress, funnel=funnel)


@routes.route("POST", "/campaigns", summary="Save a pending campaign, reserving its planned recipients",
              body=CampaignCreate, response=CampaignView, status=201, tag="campaigns")
async def post_campaign(call: Call) -> CampaignView:
    b = call.body
    plan = Plan(b.name, b.sender_id, b.template_ids, b.include_tags, b.exclude_tags,
                in_utc_range(b.scheduled_at, "scheduled_at"))
    detail = await campaigns.create(call.deps.pool, call.deps.clock, call.me.id, plan)
    await _quota_changed(call, call.me.id)
    await _saved(call, detail.id)
    return await _view(call, detail)


@routes.route("GET", "/campaigns", summary="List campaigns, newest first (own; all with ?all=true for admins)",
              query=CampaignQuery, response=Page[Campaign], tag="campaigns")
async def list_campaigns(call: Call) -> Page[Campaign]:
    q = call.query
    if q.all and not call.me.is_admin:
        raise Forbidden("only administrators may list every user's campaigns", field="all")
    owner = None if q.all else call.me.id
    return await campaigns.list_campaigns(call.deps.pool, owner, q.status, q.limit, q.offset)


@routes.route("GET", "/campaigns/{id}",
              summary="A campaign with its templates, tags, counters, reservation and live progress",
              response=CampaignView, tag="campaigns")
async def get_campaign(call: Call) -> CampaignView:
    return await _view(call, await campaigns.get(call.deps.pool, _actor(call), call.id()))


@routes.route("PATCH", "/campaigns/{id}", summary="Edit a pending campaign (recounted, reservation moved)",
              body=CampaignUpdate, response=CampaignView, tag="campaigns")
async def patch_campaign(call: Call) -> CampaignView:
    changes = {k: v for k, v in msgspec.structs.asdict(call.body).items() if v is not msgspec.UNSET}
    if changes.get("scheduled_at") is not None:
        changes["scheduled_at"] = in_utc_range(changes["scheduled_at"], "scheduled_at")
    detail, quota_delta = await campaigns.edit(call.deps.pool, call.deps.clock, _actor(call), call.id(), changes)
    if quota_delta:
        await _quota_changed(call, detail.user_id)
    # The scheduled time may have moved to now: the engine need not wait for its poll.
    await _saved(call, detail.id)
    return await _view(call, detail)


@routes.route("POST", "/campaigns/{id}/cancel",
              summary="Cancel a campaign (pending: full refund; running/paused: the engine refunds the unsent)",
              response=CampaignView, tag="campaigns")
async def cancel_campaign(call: Call) -> CampaignView:
    campaign_id, actor = call.id(), _actor(call)
    outcome = await campaigns.cancel(call.deps.pool, actor, campaign_id)
    if outcome.needs_engine:
        if call.deps.engine is None:
            raise InvalidState(f"campaign is {outcome.status}; cancelling it needs the running engine",
                               field="status")
        await call.deps.engine.cancel_campaign(campaign_id, call.me.id)
    elif outcome.refunded:
        await _quota_changed(call, outcome.owner_id)
    return await _view(call, await campaigns.get(call.deps.pool, actor, campaign_id))


@routes.route("GET", "/campaigns/{id}/events", summary="A campaign's event log, newest first", query=PageQuery,
              response=Page[CampaignEvent], tag="campaigns")
async def campaign_events(call: Call) -> Page[CampaignEvent]:
    q = call.query
    return await campaigns.events(call.deps.pool, _actor(call), call.id(), q.limit, q.offset)
