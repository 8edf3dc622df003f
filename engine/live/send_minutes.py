"""Sends per service, campaign and minute, counted in memory where results settle and written
behind in one batched upsert every few seconds (table `send_minutes`, migration 0010).

The overview reads its throughput series, campaign rates and users' shares from these rows, so
no API request scans recent `subtasks`. The counts are a cache like every counter: a crash loses
at most the last `every` seconds of them, and they are derivable from `subtasks.settled_at`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Callable, Iterable

import asyncpg

from engine.infra.clock import Clock
from engine.infra.db import is_transient
from engine.infra.queries import Q

log = logging.getLogger("edm.engine.send_minutes")

# (minute, service, campaign, user) → [sent, failed]
Key = tuple[datetime, uuid.UUID, uuid.UUID, uuid.UUID]
# One settled result: (settled at, service, campaign, campaign's owner, outcome).
SettledSend = tuple[datetime, uuid.UUID, uuid.UUID, uuid.UUID, str]

ONE_MINUTE = timedelta(minutes=1)
KEEP = timedelta(days=2)  # rows older than this are pruned (the overview reads ten minutes)
PRUNE_EVERY = 600.0  # seconds between two prunes


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class SendMinutes:
    """The recorder: `record` is called by the settler (cheap, no I/O); `run` is the write-behind task."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, *, every: float = 2.0,
                 monotonic: Callable[[], float] | None = None):
        self.pool = pool
        self.clock = clock
        self.every = every
        self._monotonic = monotonic or (lambda: asyncio.get_running_loop().time())
        self._counts: dict[Key, list[int]] = {}
        self._pruned_at: float | None = None
        self.written = 0  # rows upserted so far (for tests and logs)

    def record(self, results: Iterable[SettledSend]) -> None:
        """Count settled results; throttled and never-sent ones are not sends."""
        counts = self._counts
        # One minute object for the results that fall in the same minute (most of a flush): a
        # `replace` per result and the hash of a new datetime were most of this loop's cost.
        minute = until = None
        for at, service_id, campaign_id, user_id, outcome in results:
            if outcome == "sent":
                i = 0
            elif outcome == "failed":
                i = 1
            else:
                continue
            if minute is None or until is None or not minute <= at < until:
                minute = minute_of(at)
                until = minute + ONE_MINUTE
            key = (minute, service_id, campaign_id, user_id)
            c = counts.get(key)
            if c is None:
                c = counts[key] = [0, 0]
            c[i] += 1

    @property
    def pending(self) -> int:
        return len(self._counts)

    async def flush(self) -> None:
        """Write what was counted since the last flush; on failure the counts are kept for the next one."""
        if not self._counts:
            await self._maybe_prune()
            return
        counts, self._counts = self._counts, {}
        keys = sorted(counts, key=lambda k: (k[0], k[1].bytes, k[2].bytes))
        try:
            await self.pool.execute(Q["send_minutes.add"], [k[0] for k in keys], [k[1] for k in keys],
                                    [k[2] for k in keys], [k[3] for k in keys],
                                    [counts[k][0] for k in keys], [counts[k][1] for k in keys])
        except BaseException:
            # Merged back under what arrived meanwhile: nothing counted is lost by a failed write.
            for k, (sent, failed) in counts.items():
                c = self._counts.setdefault(k, [0, 0])
                c[0] += sent
                c[1] += failed
            raise
        self.written += len(keys)
        await self._maybe_prune()

    async def _maybe_prune(self) -> None:
        t = self._monotonic()
        if self._pruned_at is not None and t - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = t
        await self.pool.execute(Q["send_minutes.prune"], minute_of(self.clock.now() - KEEP))

    async def run(self) -> None:
        """The write-behind loop (a named engine task); transient errors keep the counts and retry."""
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.flush()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("send_minutes_retry pending=%d error=%r", len(self._counts), exc)

    async def drain(self) -> None:
        """The last flush of a stopping engine; a database that is away loses these counts (logged)."""
        try:
            await asyncio.wait_for(self.flush(), 5.0)
        except Exception as exc:
            log.warning("send_minutes_lost keys=%d error=%r", len(self._counts), exc)
