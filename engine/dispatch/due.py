"""Due campaigns: wait for the earliest scheduled time (or a save), then start what is due."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Awaitable, Callable

import asyncpg

from engine.dispatch.fanout import StartOutcome, start_campaign
from engine.dispatch.waiting import wait_until
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.live.events import EventWriter

log = logging.getLogger("edm.engine.due")
BATCH = 20


class DueStarter:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, events: EventWriter,
                 on_started: Callable[[StartOutcome], Awaitable[None]], *, poll_seconds: float = 1.0):
        self.pool = pool
        self.clock = clock
        self.events = events
        self.on_started = on_started
        # A real-time ceiling on each wait: saves made by another process (a standby's API)
        # are seen within it even without a wake-up.
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.now()
            ids = [r["id"] for r in await self.pool.fetch(Q["fanout.due_ids"], now, BATCH)]
            for campaign_id in ids:
                outcome = await start_campaign(self.pool, self.events, campaign_id, now)
                log.info("campaign_start id=%s status=%s total=%d reason=%s", campaign_id, outcome.status,
                         outcome.total, outcome.reason)
                if outcome.status != "skipped":
                    await self.on_started(outcome)
            if len(ids) == BATCH:
                continue
            nxt: datetime | None = await self.pool.fetchval(Q["fanout.due_next"], now)
            await wait_until(self.clock, nxt, self._wake, self.poll_seconds)
