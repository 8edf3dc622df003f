"""Daily quota resets: exactly once per quota day, on time while running and at start-up after
downtime, by hand, and rescheduled when a reset time changes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Awaitable, Callable, Iterable
from zoneinfo import ZoneInfo

import asyncpg

from engine.dispatch.hot_state import HotState, ServiceState
from engine.dispatch.waiting import wait_until
from engine.domain.quota_day import quota_day_start
from engine.domain.warmup import Ramp, ramp_day, ramp_quota
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.live.events import EventWriter

log = logging.getLogger("edm.engine.resets")


def due_resets(services: Iterable[ServiceState], now: datetime) -> list[ServiceState]:
    return [s for s in services if now >= s.next_reset]


async def ramp_quotas(pool: asyncpg.Pool | asyncpg.Connection, tz: ZoneInfo, due: list[tuple[uuid.UUID, datetime]]) -> list[int | None]:
    """Each new quota day's quota under the service's warm-up ramp (None = the full daily quota)."""
    ramps = {r["id"]: r for r in await pool.fetch(Q["resets.ramps"], [d[0] for d in due])}
    out: list[int | None] = []
    for sid, boundary in due:
        r = ramps.get(sid)
        out.append(None if r is None else ramp_quota(
            r["daily_quota"], Ramp.from_json(r["warmup"]),
            ramp_day(r["warmup_started"], boundary.astimezone(tz).date())))
    return out


async def apply_resets(pool: asyncpg.Pool, tz: ZoneInfo, due: list[tuple[uuid.UUID, datetime]], now: datetime,
                       message: str = "daily quota reset") -> set[uuid.UUID]:
    """Open the quota day starting at each boundary; returns the services actually reset."""
    if not due:
        return set()
    quotas = await ramp_quotas(pool, tz, due)
    rows = await pool.fetch(Q["resets.apply"], [d[0] for d in due], [d[1] for d in due], message, None, now, quotas)
    return {r["service_id"] for r in rows}


async def reset_service_now(pool: asyncpg.Pool | asyncpg.Connection, service_id: uuid.UUID, now: datetime, *,
                            operator_id: uuid.UUID | None = None, note: str = "quota reset by hand",
                            tz: ZoneInfo | None = None) -> bool:
    """A reset by hand (API, `edm quota reset-now`): a new quota day from now; False = no such service.

    A running engine must be told (`services_changed`) to pick the new counters up.
    """
    # A reset by hand on the same business day stays on the same ramp day.
    quota = (await ramp_quotas(pool, tz, [(service_id, now)]))[0] if tz is not None else None
    return await pool.fetchval(Q["resets.reset_now"], service_id, now, operator_id, note, quota) is not None


class Resetter:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, tz: ZoneInfo, state: HotState, events: EventWriter,
                 write_lock: asyncio.Lock, on_reset: Callable[[ServiceState], None]):
        self.pool = pool
        self.clock = clock
        self.tz = tz
        self.state = state
        self.events = events
        self.write_lock = write_lock
        self.on_reset = on_reset
        # Called under the write lock before a reset by hand: it starts after the last request
        # the row records, so the counters written behind must be in the row first.
        self.before_reset_now: Callable[[], Awaitable[object]] | None = None
        self._wake = asyncio.Event()
        self.resets = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.now()
            due = due_resets(self.state.services.values(), now)
            if due:
                await self.reset(due, now)
            deadline = min((s.next_reset for s in self.state.services.values()), default=None)
            await wait_until(self.clock, deadline, self._wake)

    async def reset(self, due: list[ServiceState], now: datetime) -> None:
        pairs = [(s.id, quota_day_start(s.reset_time, self.tz, now)) for s in due]
        # No bind may interleave: a request counted before the reset must be dated before it.
        async with self.write_lock:
            done = await apply_resets(self.pool, self.tz, pairs, now)
            await self.refresh([s.id for s in due])
        self.resets += len(done)
        for sid in done:
            s = self.state.services[sid]
            log.info("quota_reset service=%s quota_day_start=%s", s.name, s.quota_day_start.isoformat())
            self.events.service(sid, "reset", "daily quota reset", now,
                                {"quota_day_start": s.quota_day_start.isoformat()})

    async def reset_now(self, service_id: uuid.UUID, operator_id: uuid.UUID | None) -> bool:
        now = self.clock.now()
        async with self.write_lock:
            if self.before_reset_now is not None:
                await self.before_reset_now()
            done = await reset_service_now(self.pool, service_id, now, operator_id=operator_id, tz=self.tz)
            if service_id in self.state.services:
                await self.refresh([service_id])
        if done:
            self.events.service(service_id, "reset", "quota reset by hand", now)
        return done

    async def refresh(self, ids: list[uuid.UUID]) -> None:
        """Re-read the quota fields of these services and re-arm them."""
        rows = await self.pool.fetch(Q["resets.quota_fields"], ids)
        now = self.clock.now()
        for r in rows:
            s = self.state.services.get(r["id"])
            if s is None:
                continue
            s.used_today, s.remaining_today, s.quota_day_start = r["used_today"], r["remaining_today"], r["quota_day_start"]
            s.reschedule(self.tz, now)
            s.awaiting_reset = False
            self.on_reset(s)
