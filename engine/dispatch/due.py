"""Due campaigns: wait for the earliest scheduled time (or a save), then start what is due."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Awaitable, Callable, Sequence

import asyncpg

from engine.dispatch.fanout import StartOutcome, start_campaign
from engine.dispatch.waiting import wait_until
from engine.infra.clock import Clock
from engine.infra.db import is_transient
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter
from engine.store import quota_ledger

log = logging.getLogger("edm.engine.due")
BATCH = 20


class DueStarter:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, events: EventWriter,
                 on_started: Callable[[Sequence[StartOutcome]], Awaitable[None]], *, poll_seconds: float = 1.0,
                 max_active: int = 0, gather_seconds: float = 0.0):
        self.pool = pool
        self.clock = clock
        self.events = events
        self.on_started = on_started
        # A real-time ceiling on each wait: saves made by another process (a standby's API)
        # are seen within it even without a wake-up.
        self.poll_seconds = poll_seconds
        # Real seconds a save's wake-up waits for other saves before starting what is due, so
        # campaigns saved together are started (and their users offered services) together.
        self.gather_seconds = gather_seconds
        self._wake = asyncio.Event()
        # Active campaigns allowed per user (0 = no cap): a due campaign over it waits, pending,
        # and is seen again within `poll_seconds` of a slot freeing.
        self.max_active = max_active

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.now()
            ids = [r["id"] for r in await self.pool.fetch(Q["fanout.due_ids"], now, BATCH, self.max_active)]
            started: list[StartOutcome] = []
            for campaign_id in ids:
                try:
                    outcome = await start_campaign(self.pool, self.events, campaign_id, now, self.max_active)
                except Exception as exc:
                    if is_transient(exc):
                        if started:  # those did start: hand them over before the task restarts
                            await self.on_started(started)
                        raise  # the task is restarted; the campaign is still pending
                    # One campaign that cannot start must not stop the engine, nor be tried forever.
                    log.exception("campaign_start_crashed id=%s", campaign_id)
                    outcome = await fail_start(self.pool, self.events, campaign_id,
                                               f"could not start: {type(exc).__name__}: {exc}"[:500], now)
                log.info("campaign_start id=%s status=%s total=%d reason=%s", campaign_id, outcome.status,
                         outcome.total, outcome.reason)
                if outcome.status != "skipped":
                    started.append(outcome)
            if started:
                # Handed over together: their users start level (see start_group.py).
                await self.on_started(started)
            if len(ids) == BATCH:
                continue
            nxt: datetime | None = await self.pool.fetchval(Q["fanout.due_next"], now)
            await wait_until(self.clock, nxt, self._wake, self.poll_seconds)
            if self._wake.is_set() and self.gather_seconds > 0:
                await asyncio.sleep(self.gather_seconds)


async def fail_start(pool: asyncpg.Pool, events: EventWriter, campaign_id: uuid.UUID, reason: str,
                     now: datetime) -> StartOutcome:
    """Mark a pending campaign failed with `reason` and refund its reservation (a start that
    raised rolled back whole, so nothing else was written)."""
    async with pool.acquire() as conn, conn.transaction():
        c = await conn.fetchrow(Q["fanout.lock_pending"], campaign_id)
        if c is None:
            return StartOutcome(campaign_id, uuid.UUID(int=0), "skipped")
        await conn.execute(Q["fanout.mark_failed"], campaign_id, reason, now)
        if c["reserved"]:
            await quota_ledger.apply(conn, c["user_id"], c["reserved"], "refund", campaign_id=campaign_id,
                                     reason="campaign could not start")
        await events.write(conn, [CampaignEvent(campaign_id, "failed", reason, {"refunded": c["reserved"]})], now)
    return StartOutcome(campaign_id, c["user_id"], "failed", reason=reason)
