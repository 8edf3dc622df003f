"""Running-campaign actions (pause, resume), its subtasks and its live progress.

Cancel lives with the campaign CRUD (`POST /campaigns/{id}/cancel`), which hands running and
paused campaigns to the engine.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

from api.paging import Limit, Offset
from api.router import router
from api.routing import Call
from engine.errors import NotFound, ServiceUnavailable
from engine.models import Page, page_of
from engine.queries import Q
from engine.routing import MESSAGES

SubtaskStatus = Literal["pending", "sending", "sent", "failed", "cancelled"]
# The window the progress rate is measured over, in seconds.
RATE_WINDOW = 60


class SubtaskQuery(msgspec.Struct, forbid_unknown_fields=True):
    status: SubtaskStatus | None = None
    limit: Limit = 50
    offset: Offset = 0


class Subtask(msgspec.Struct):
    id: uuid.UUID
    seq: int
    email: str
    template_id: uuid.UUID
    status: str
    service_id: uuid.UUID | None
    from_address: str | None
    attempted_at: datetime | None
    settled_at: datetime | None
    message_id: str | None
    error: str | None


class Progress(msgspec.Struct):
    id: uuid.UUID
    status: str
    pause_reason: str | None
    pause_message: str | None
    failure_reason: str | None
    total: int
    pending: int
    sending: int
    sent: int
    failed: int
    cancelled: int
    percent: Annotated[float, msgspec.Meta(ge=0, le=100)]
    # Settled subtasks per minute over the last minute.
    rate_per_minute: float
    eta_seconds: float | None
    started_at: datetime | None
    finished_at: datetime | None


async def _owned(call: Call, campaign_id: uuid.UUID) -> None:
    """Other users' campaigns answer 404, never 403."""
    if await call.deps.pool.fetchrow(Q["campaign_actions.owned"], campaign_id, call.me.id, call.me.is_admin) is None:
        raise NotFound("campaign not found", field="id")


def _engine(call: Call):  # type: ignore[no-untyped-def]
    if call.deps.engine is None:
        raise ServiceUnavailable("the dispatch engine is not running in this process")
    return call.deps.engine


async def progress_of(call: Call, campaign_id: uuid.UUID) -> Progress:
    now = call.deps.clock.now()
    r = await call.deps.pool.fetchrow(Q["campaign_actions.progress"], campaign_id,
                                      now - timedelta(seconds=RATE_WINDOW))
    if r is None:
        raise NotFound("campaign not found", field="id")
    settled = r["sent"] + r["failed"] + r["cancelled"]
    total = r["total"] or 0
    rate = r["recent"] * 60 / RATE_WINDOW
    left = r["pending"] + r["sending"]
    eta = None
    if left == 0 and total:
        eta = 0.0  # a campaign with no subtasks yet (pending, or failed before its fan-out) has no ETA
    elif rate > 0 and r["status"] == "running":
        eta = left / rate * 60
    return Progress(
        id=r["id"], status=r["status"], pause_reason=r["pause_reason"],
        pause_message=MESSAGES.get(r["pause_reason"]) if r["pause_reason"] else None,
        failure_reason=r["failure_reason"], total=total, pending=r["pending"], sending=r["sending"],
        sent=r["sent"], failed=r["failed"], cancelled=r["cancelled"],
        percent=round(100.0 * settled / total, 2) if total else 0.0, rate_per_minute=rate, eta_seconds=eta,
        started_at=r["started_at"], finished_at=r["finished_at"])


@router.route("POST", "/campaigns/{id}/pause", summary="Pause a running campaign (reason USER)",
              response=Progress, tag="campaigns")
async def pause_campaign(call: Call) -> Progress:
    campaign_id = call.id()
    await _owned(call, campaign_id)
    await _engine(call).pause_campaign(campaign_id, call.me.id)
    return await progress_of(call, campaign_id)


@router.route("POST", "/campaigns/{id}/resume",
              summary="Resume a paused campaign (routing checks may pause it again with their reason)",
              response=Progress, tag="campaigns")
async def resume_campaign(call: Call) -> Progress:
    campaign_id = call.id()
    await _owned(call, campaign_id)
    await _engine(call).resume_campaign(campaign_id, call.me.id)
    return await progress_of(call, campaign_id)


@router.route("GET", "/campaigns/{id}/subtasks", summary="A campaign's subtasks by seq, optionally by status",
              query=SubtaskQuery, response=Page[Subtask], tag="campaigns")
async def list_subtasks(call: Call) -> Page[Subtask]:
    campaign_id, q = call.id(), call.query
    await _owned(call, campaign_id)
    rows = await call.deps.pool.fetch(Q["campaign_actions.subtasks"], campaign_id, q.status, q.limit, q.offset)
    return page_of(Subtask, rows, q.limit, q.offset)


@router.route("GET", "/campaigns/{id}/progress", summary="Counts, rate, ETA and pause reason of a campaign",
              response=Progress, tag="campaigns")
async def campaign_progress(call: Call) -> Progress:
    campaign_id = call.id()
    await _owned(call, campaign_id)
    return await progress_of(call, campaign_id)
