"""The live overview (the dashboard's read model), built from PostgreSQL alone so any API process can serve it.

Service states are derived from the live-state columns the engine writes through and the
snapshot instant; counters come from the campaigns' cached counts; throughput comes from the
per-minute send counters the engine writes behind (`send_minutes`, engine/live/send_minutes.py),
never from a scan of recent subtasks. Four queries per snapshot, all in one read-only
repeatable-read transaction so the parts agree with each other.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, Awaitable, Callable, Literal, Mapping
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from engine.domain.pause_rules import pause_message
from engine.domain.quota_day import format_hhmm, quota_day
from engine.domain.send_window import window_of
from engine.infra.queries import Q
from engine.live.leadership import LeaderView, read_leader
from engine.live.progress import RATE_MINUTES, figures

_UTC = ZoneInfo("UTC")

ServiceLiveState = Literal["ready", "interval", "frozen", "disabled", "exhausted", "throttled"]

MINUTES = 10  # length of the sends-per-minute series


class ServiceView(msgspec.Struct):
    id: uuid.UUID
    name: str
    provider: str
    enabled: bool
    state: ServiceLiveState
    interval_remaining: float
    send_interval: int
    used_today: int
    remaining_today: int
    daily_quota: int
    reset_time: str
    next_reset_at: datetime
    consecutive_failures: int
    abnormal_reason: str | None
    sends_per_minute: list[int]


class CampaignView(msgspec.Struct):
    id: uuid.UUID
    name: str
    owner: str
    owner_id: uuid.UUID
    status: str
    pause_reason: str | None
    pause_message: str | None
    total: int
    sent: int
    failed: int
    pending: int
    cancelled: int
    progress: float
    rate_per_minute: float
    eta_seconds: float | None
    scheduled_at: datetime | None
    created_at: datetime


class UserView(msgspec.Struct):
    id: uuid.UUID
    username: str
    quota_remaining: int
    running_campaigns: int
    share_recent: float


class Totals(msgspec.Struct):
    services: int
    ready: int
    frozen: int
    exhausted: int
    running_campaigns: int
    sent_last_minute: int
    pending: int


class Overview(msgspec.Struct):
    now: datetime
    business_tz: str
    services: list[ServiceView]
    campaigns: list[CampaignView]
    users: list[UserView]
    totals: Totals
    # Which engine leads (administrators only; None for a user, or before any engine led).
    leader: LeaderView | None = None
    # How many items each list has in the whole snapshot: the lists above are its first page
    # (`limit`); GET /monitor/services, /monitor/campaigns and /monitor/users page through the rest.
    services_total: int = 0
    campaigns_total: int = 0
    users_total: int = 0


def service_state(row: Mapping[str, Any], now: datetime) -> tuple[ServiceLiveState, float]:
    """The state a service is in at `now`, and seconds until its interval/throttle ends."""
    ready_at = None
    if row["last_request_at"] is not None:
        ready_at = row["last_request_at"] + timedelta(seconds=row["send_interval"])
    throttled = row["throttled_until"] is not None and row["throttled_until"] > now
    if throttled and (ready_at is None or row["throttled_until"] > ready_at):
        ready_at = row["throttled_until"]
    wait = max(0.0, (ready_at - now).total_seconds()) if ready_at is not None else 0.0
    # Most lasting condition first: what an operator has to act on (or wait a day for) wins
    # over what clears by itself within seconds.
    if not row["enabled"]:
        return "disabled", wait
    if row["abnormal_frozen"]:
        return "frozen", wait
    if row["remaining_today"] <= 0:
        return "exhausted", wait
    if throttled:
        return "throttled", wait
    if wait > 0:
        return "interval", wait
    return "ready", 0.0


class _Set(IntEnum):
    """GROUPING() values of the three grouping sets of monitor.recent."""

    SERVICE = 3
    CAMPAIGN = 5
    USER = 6


_OLDEST_FIRST = tuple(f"m{ago}" for ago in range(MINUTES - 1, -1, -1))


class _Recent:
    """The last ten minute buckets of sends, folded by service, campaign and user.

    Bucket 0 is the current minute so far, 9 nine minutes back. A campaign's rate is taken over
    the last five buckets (`span` seconds: four whole minutes plus the current one so far); "the
    last minute" counts the current bucket plus the share of the previous one still within 60 s.
    """

    def __init__(self, rows: list[asyncpg.Record], now: datetime):
        self.into_minute = now.second + now.microsecond / 1e6
        self.span = (RATE_MINUTES - 1) * 60.0 + self.into_minute
        rest = max(0.0, 1.0 - self.into_minute / 60.0)
        self.per_service: dict[uuid.UUID, list[int]] = {}
        self.settled: dict[uuid.UUID, int] = {}
        self.per_user: dict[uuid.UUID, int] = {}
        self.last_minute_by_user: dict[uuid.UUID, int] = {}
        for r in rows:
            match r["grouping_set"]:
                case _Set.SERVICE:
                    # Oldest first: index 0 is nine minutes ago, the last index this minute.
                    self.per_service[r["service_id"]] = [r[k] or 0 for k in _OLDEST_FIRST]
                case _Set.CAMPAIGN:
                    self.settled[r["campaign_id"]] = r["rate"] or 0
                case _Set.USER:
                    self.per_user[r["user_id"]] = r["total"] or 0
                    self.last_minute_by_user[r["user_id"]] = round((r["m0"] or 0) + (r["m1"] or 0) * rest)
        self.total = sum(self.per_user.values())
        self.last_minute = sum(self.last_minute_by_user.values())


def _service(row: asyncpg.Record, now: datetime, next_reset: Callable[[Any], datetime], recent: _Recent) -> ServiceView:
    state, wait = service_state(row, now)
    return ServiceView(
        id=row["id"], name=row["name"], provider=row["provider"], enabled=row["enabled"], state=state,
        interval_remaining=round(wait, 3), send_interval=row["send_interval"], used_today=row["used_today"],
        remaining_today=row["remaining_today"], daily_quota=row["daily_quota"],
        reset_time=format_hhmm(row["reset_time"]), next_reset_at=next_reset(row["reset_time"]),
        consecutive_failures=row["consecutive_failures"], abnormal_reason=row["abnormal_reason"],
        sends_per_minute=list(recent.per_service.get(row["id"], [0] * MINUTES)))


def _campaign(row: asyncpg.Record, now: datetime, recent: _Recent) -> CampaignView:
    total, sent, failed, cancelled = row["total"], row["sent_count"], row["failed_count"], row["cancelled_count"]
    done = sent + failed + cancelled
    pending = max(0, total - done)
    progress = min(1.0, done / total) if total else (1.0 if row["status"] == "completed" else 0.0)
    # A send window is stored with its zone; the ETA adds its closed hours.
    f = figures(row["status"], total, pending, recent.settled.get(row["id"], 0), row["started_at"], now,
                window_of(row["send_window"], _UTC), row["pause_reason"], span=recent.span)
    reason = row["pause_reason"]
    return CampaignView(
        id=row["id"], name=row["name"], owner=row["owner"], owner_id=row["owner_id"], status=row["status"],
        pause_reason=reason, pause_message=pause_message(reason), total=total,
        sent=sent, failed=failed, pending=pending, cancelled=cancelled, progress=round(progress, 4),
        rate_per_minute=f.rate_per_minute, eta_seconds=f.eta_seconds,
        scheduled_at=row["scheduled_at"], created_at=row["created_at"])


async def build_overview(pool: asyncpg.Pool, now: datetime, tz: ZoneInfo, viewer: uuid.UUID | None) -> Overview:
    """The snapshot for an administrator (`viewer=None`) or for one user."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        service_rows = await conn.fetch(Q["monitor.services"], viewer)
        campaign_rows = await conn.fetch(Q["monitor.campaigns"], now, viewer)
        recent = _Recent(await conn.fetch(Q["monitor.recent"], now), now)
        user_rows = await conn.fetch(Q["monitor.users"], viewer)
        leader = await read_leader(conn) if viewer is None else None
    # A fleet shares a handful of reset times: each one's next reset is worked out once per snapshot.
    next_reset = functools.lru_cache(maxsize=None)(lambda reset_time: quota_day(reset_time, tz, now).next_reset)
    services = [_service(r, now, next_reset, recent) for r in service_rows]
    campaigns = [_campaign(r, now, recent) for r in campaign_rows]
    users = [UserView(id=r["id"], username=r["username"], quota_remaining=r["quota_remaining"],
                      running_campaigns=r["running_campaigns"],
                      share_recent=round(recent.per_user.get(r["id"], 0) / recent.total, 4) if recent.total else 0.0)
             for r in user_rows]
    states = [s.state for s in services]
    totals = Totals(
        services=len(services), ready=states.count("ready"), frozen=states.count("frozen"),
        exhausted=states.count("exhausted"),
        running_campaigns=sum(1 for c in campaigns if c.status == "running"),
        sent_last_minute=recent.last_minute if viewer is None else recent.last_minute_by_user.get(viewer, 0),
        pending=sum(c.pending for c in campaigns if c.status in ("running", "paused", "pending")))
    return Overview(now=now, business_tz=tz.key, services=services, campaigns=campaigns, users=users,
                    totals=totals, leader=leader, services_total=len(services), campaigns_total=len(campaigns),
                    users_total=len(users))


async def campaign_owners(pool: asyncpg.Pool, campaign_ids: list[uuid.UUID]) -> dict[str, str]:
    """Owner ids (as text) of the named campaigns: the event stream's role filter."""
    rows = await pool.fetch(Q["monitor.campaign_owners"], campaign_ids)
    return {r["id"]: r["user_id"] for r in rows}


class OverviewCache:
    """One snapshot per scope (an admin's, or one user's) shared for `ttl` seconds of real time:
    a hundred dashboards refreshing every second cost one build a second, not a hundred.

    Concurrent misses for one scope wait for the same build, which runs as its own task so a
    client that goes away does not cancel it for the others; a scope never has two builds at
    once while it is younger than `stale_for` (under load a build can outlast the ttl, and piling
    more on makes every one slower). While a rebuild runs, clients get the previous snapshot if
    it is younger than `stale_for` (its `now` says when it was taken) instead of waiting: on a
    busy machine the build is the slow part of every overview call that has to wait for one."""

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic, stale_for: float | None = None):
        self.ttl = ttl
        self.monotonic = monotonic
        self.stale_for = 3 * ttl if stale_for is None else stale_for
        self._entries: dict[uuid.UUID | None, tuple[float, asyncio.Task[Overview]]] = {}
        # The last finished snapshot of each scope and when its build started.
        self._last: dict[uuid.UUID | None, tuple[float, Overview]] = {}

    async def get(self, viewer: uuid.UUID | None, build: Callable[[], Awaitable[Overview]]) -> Overview:
        if self.ttl <= 0:
            return await build()
        t = self.monotonic()
        entry = self._entries.get(viewer)
        # A build still running after `stale_for` (a hung connection) no longer holds others back.
        if entry is None or (t - entry[0] >= self.ttl and (entry[1].done() or t - entry[0] >= self.stale_for)):
            if len(self._entries) > 10_000:
                self._entries.clear()
                self._last.clear()
            entry = (t, asyncio.ensure_future(build()))
            entry[1].add_done_callback(functools.partial(self._keep, viewer, entry[0]))
            self._entries[viewer] = entry
        task = entry[1]
        if not task.done():
            last = self._last.get(viewer)
            if last is not None and t - last[0] < self.stale_for:
                return last[1]
        try:
            return await asyncio.shield(task)
        except Exception:
            # A failed build is not kept: the next request tries again.
            if self._entries.get(viewer) is entry:
                del self._entries[viewer]
            raise

    def _keep(self, viewer: uuid.UUID | None, started: float, task: asyncio.Task[Overview]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._last[viewer] = (started, task.result())
