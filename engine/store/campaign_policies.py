"""A campaign's sending policies (its send window), set while it is pending, running or paused."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import msgspec

from engine.domain.errors import InvalidState, NotFound, Unprocessable
from engine.domain.quota_day import HHMM
from engine.domain.send_window import SendWindow
from engine.infra.queries import Q
from engine.store.campaigns import Actor

Weekday = Annotated[int, msgspec.Meta(ge=1, le=7)]


class SendWindowIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Open on `days` (ISO weekdays, 1 = Monday; all when omitted) from `start` to `end` (HH:MM,
    start < end) in `tz` (an IANA zone; the business time zone when omitted)."""

    start: Annotated[str, msgspec.Meta(pattern=HHMM)]
    end: Annotated[str, msgspec.Meta(pattern=HHMM)]
    days: Annotated[list[Weekday], msgspec.Meta(min_length=1, max_length=7)] | None = None
    tz: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class SendWindowView(msgspec.Struct):
    campaign_id: uuid.UUID
    send_window: dict[str, Any] | None
    # Whether the window is open now (always true without one).
    open_now: bool
    # When it next opens or closes (null without a window).
    next_change: datetime | None


def _window(body: SendWindowIn, default_tz: ZoneInfo) -> tuple[SendWindow, dict[str, Any]]:
    try:
        tz = ZoneInfo(body.tz) if body.tz else default_tz
    except (ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(f"unknown time zone {body.tz!r}", field="tz") from None
    w = SendWindow(time.fromisoformat(body.start), time.fromisoformat(body.end), tz,
                   frozenset(body.days) if body.days else frozenset(range(1, 8)))
    problem = w.problem()
    if problem is not None:
        # Schema-valid (the document cannot compare start with end): 422.
        raise Unprocessable(problem, field="end" if "start" in problem else "days")
    doc = msgspec.to_builtins(body)
    doc["tz"] = tz.key  # stored resolved: the window does not move if the business zone changes
    if body.days:
        doc["days"] = sorted(set(body.days))
    return w, doc


def view(campaign_id: uuid.UUID, doc: dict[str, Any] | None, default_tz: ZoneInfo, now: datetime) -> SendWindowView:
    if not doc:
        return SendWindowView(campaign_id, None, True, None)
    w, _ = _window(msgspec.convert(doc, SendWindowIn), default_tz)
    return SendWindowView(campaign_id, doc, w.is_open(now), w.next_change(now))


async def get_send_window(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID, default_tz: ZoneInfo,
                          now: datetime) -> SendWindowView:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["campaign_policies.lock"], campaign_id, actor.id, actor.is_admin)
    if row is None:
        raise NotFound("campaign not found", field="id")
    return view(campaign_id, row["send_window"], default_tz, now)


async def set_send_window(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID, body: SendWindowIn | None,
                          default_tz: ZoneInfo, now: datetime) -> tuple[SendWindowView, str]:
    """Set (or with None remove) the window; returns the view and the campaign's status."""
    doc = _window(body, default_tz)[1] if body is not None else None
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["campaign_policies.lock"], campaign_id, actor.id, actor.is_admin)
        if row is None:
            raise NotFound("campaign not found", field="id")
        if row["status"] not in ("pending", "running", "paused"):
            raise InvalidState(f"a {row['status']} campaign has no send window to change", field="status")
        await conn.execute(Q["campaign_policies.set_window"], campaign_id, doc)
        await conn.execute(Q["campaign_policies.event"], campaign_id, "send_window",
                           "send window set" if doc else "send window removed", {"send_window": doc}, now)
    return view(campaign_id, doc, default_tz, now), row["status"]
