"""Running-campaign actions (pause, resume), its subtasks and its live progress.

Cancel lives with the campaign CRUD (`POST /campaigns/{id}/cancel`), which hands running and
paused campaigns to the engine.
"""

from __future__ import annotations

import uuid

import msgspec

from api.paging import Limit, Offset
from api.routing import Call, Routes
from engine.domain.commands import EngineCommands
from engine.domain.errors import ServiceUnavailable
from engine.domain.types import SubtaskStatus
from engine.live.progress import Progress, campaign_progress
from engine.store import campaigns
from engine.store.campaign_models import Subtask
from engine.store.campaigns import Actor
from engine.store.rows import Page

routes = Routes()


class SubtaskQuery(msgspec.Struct, forbid_unknown_fields=True):
    status: SubtaskStatus | None = None
    limit: Limit = 50
    offset: Offset = 0


def _actor(call: Call) -> Actor:
    return Actor(call.me.id, call.me.is_admin)


def _engine(call: Call) -> EngineCommands:
    if call.deps.engine is None:
        raise ServiceUnavailable("the dispatch engine is not running in this process")
    return call.deps.engine


async def progress_of(call: Call, campaign_id: uuid.UUID) -> Progress:
    return await campaign_progress(call.deps.pool, campaign_id, call.deps.clock.now())


@routes.route("POST", "/campaigns/{id}/pause", summary="Pause a running campaign (reason USER)",
              response=Progress, tag="campaigns")
async def pause_campaign(call: Call) -> Progress:
    campaign_id = call.id()
    await campaigns.ensure_visible(call.deps.pool, _actor(call), campaign_id)
    await _engine(call).pause_campaign(campaign_id, call.me.id)
    return await progress_of(call, campaign_id)


@routes.route("POST", "/campaigns/{id}/resume",
              summary="Resume a paused campaign (routing checks may pause it again with their reason)",
              response=Progress, tag="campaigns")
async def resume_campaign(call: Call) -> Progress:
    campaign_id = call.id()
    await campaigns.ensure_visible(call.deps.pool, _actor(call), campaign_id)
    await _engine(call).resume_campaign(campaign_id, call.me.id)
    return await progress_of(call, campaign_id)


@routes.route("GET", "/campaigns/{id}/subtasks", summary="A campaign's subtasks by seq, optionally by status",
              query=SubtaskQuery, response=Page[Subtask], tag="campaigns")
async def list_subtasks(call: Call) -> Page[Subtask]:
    q = call.query
    return await campaigns.subtasks(call.deps.pool, _actor(call), call.id(), q.status, q.limit, q.offset)


@routes.route("GET", "/campaigns/{id}/progress", summary="Counts, rate, ETA and pause reason of a campaign",
              response=Progress, tag="campaigns")
async def campaign_progress_view(call: Call) -> Progress:
    # The most frequent call of users' scripts: one query, the visibility check included.
    owner = None if call.me.is_admin else call.me.id
    return await campaign_progress(call.deps.pool, call.id(), call.deps.clock.now(), owner)
