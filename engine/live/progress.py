"""Campaign progress: the one rule for counts, rate and ETA.

The overview (what the dashboard shows) and `GET /campaigns/{id}/progress` both call
`figures`, so one campaign shows one rate and one ETA wherever it is looked at.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from engine.domain.errors import NotFound
from engine.domain.pause_rules import pause_message
from engine.domain.send_window import SendWindow, finish_time, window_of
from engine.infra.queries import Q

RATE_WINDOW = 300.0  # seconds of settled sends a campaign's rate is measured over
RATE_MINUTES = 5  # the same, in the per-minute send counters' buckets (the current one included)
MIN_RATE_WINDOW = 60.0  # a campaign that just started is not credited with a burst rate


@dataclass(frozen=True)
class Figures:
    rate_per_minute: float
    eta_seconds: float | None


def figures(status: str, total: int, left: int, settled_recent: int, started_at: datetime | None,
            now: datetime, send_window: SendWindow | None = None, pause_reason: str | None = None,
            span: float = RATE_WINDOW) -> Figures:
    """Rate over the last `span` seconds (at least one minute since the start), and the ETA of
    `left`; with a send window, sending happens only while it is open (closed hours are added)."""
    window = span
    if started_at is not None:
        window = min(span, max(MIN_RATE_WINDOW, (now - started_at).total_seconds()))
    rate = round(settled_recent / window * 60.0, 2)
    eta: float | None = None
    if left == 0 and total:
        eta = 0.0
    elif rate > 0 and (status == "running" or pause_reason == "OUTSIDE_SEND_WINDOW"):
        eta = round((finish_time(send_window, now, left / rate * 60.0) - now).total_seconds(), 1)
    return Figures(rate, eta)


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
    # Settled subtasks per minute over the last five minutes (at least one since the start).
    rate_per_minute: float
    eta_seconds: float | None
    started_at: datetime | None
    finished_at: datetime | None


def rate_span(now: datetime) -> tuple[datetime, float]:
    """The first minute bucket of the rate and the seconds the buckets cover (four whole
    minutes and the current one so far): the overview's rule, so both show one rate."""
    minute = now.replace(second=0, microsecond=0)
    return minute - timedelta(minutes=RATE_MINUTES - 1), (RATE_MINUTES - 1) * 60.0 + (now - minute).total_seconds()


async def campaign_progress(pool: asyncpg.Pool, campaign_id: uuid.UUID, now: datetime,
                            owner: uuid.UUID | None = None) -> Progress:
    """From the campaign's counters, its in-flight count (a partial index) and its per-minute
    send counters: a few index probes, whatever the campaign's size. With `owner`, another
    user's campaign is not found (404, never 403)."""
    since, span = rate_span(now)
    r = await pool.fetchrow(Q["campaign_actions.progress"], campaign_id, since, now, owner)
    if r is None:
        raise NotFound("campaign not found", field="id")
    total = r["total"] or 0
    settled = r["sent"] + r["failed"] + r["cancelled"]
    left = max(0, total - settled)
    sending = min(r["sending"], left)
    window = window_of(r["send_window"], ZoneInfo("UTC"))  # stored with its zone
    f = figures(r["status"], total, left, r["recent"], r["started_at"], now, window, r["pause_reason"], span=span)
    return Progress(
        id=r["id"], status=r["status"], pause_reason=r["pause_reason"], pause_message=pause_message(r["pause_reason"]),
        failure_reason=r["failure_reason"], total=total, pending=left - sending, sending=sending,
        sent=r["sent"], failed=r["failed"], cancelled=r["cancelled"],
        percent=round(100.0 * settled / total, 2) if total else 0.0, rate_per_minute=f.rate_per_minute,
        eta_seconds=f.eta_seconds, started_at=r["started_at"], finished_at=r["finished_at"])
