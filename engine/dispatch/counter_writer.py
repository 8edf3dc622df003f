"""The services' counters (`used_today`, `remaining_today`, `last_request_at`), written behind.

The leader owns them in memory (hot_state); a bind no longer writes its service's row, so the hot
path touches only subtasks and campaigns. This task writes every service whose counters moved
since it last wrote them, in one statement: `every` seconds after the first move at the latest,
sooner when moves pause (real time: it paces a write, it is no business rule), when a campaign
completes, before a reset by hand, and once more when the engine stops. They are derivable: after a
crash, recovery recounts them from subtasks (recovery.reconcile_services), so a kill -9 loses
nothing but up to `every` seconds of a figure the API shows.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Iterable

import asyncpg

from engine.dispatch.dispatch_queries import Fence
from engine.dispatch.hot_state import HotState, ServiceState
from engine.dispatch.write_gate import WriteGate
from engine.infra.queries import Q

log = logging.getLogger("edm.engine.counters")

Counters = tuple[int, int, datetime | None, datetime]

# Every this many writes, every service is compared with what was written, not only those touched.
FULL_EVERY = 10
# Seconds without a move after which the counters are written at once.
QUIET = 0.25


def counters(s: ServiceState) -> Counters:
    return (s.used_today, s.remaining_today, s.last_request_at, s.quota_day_start)


class CounterWriter:
    def __init__(self, pool: asyncpg.Pool, state: HotState, write_lock: WriteGate, fence: Fence, *,
                 every: float = 2.0):
        self.pool = pool
        self.state = state
        # Fenced as the binds are: only the lease's holder writes (the statement checks the epoch).
        self.fence = fence
        # Shared, beside binds and settles (a settle writing failure streaks takes its turn on
        # `services_rows`); resets and reloads, exclusive, never see a write half done.
        self.write_lock = write_lock
        self.every = every
        # What the row holds, as far as this engine knows (set at load, and by each write).
        self._written: dict[uuid.UUID, Counters] = {}
        # Services whose counters a pick or a give-back moved since the last write; every
        # `FULL_EVERY`th write looks at every service instead (what else moves them in memory
        # is rare and also written to the row by whoever moved it: resets, commands, test sends).
        self._touched: set[uuid.UUID] = set()
        self._flushes = 0
        self._moved = asyncio.Event()
        self.writes = 0

    def touch(self, service_id: uuid.UUID) -> None:
        self._touched.add(service_id)
        self._moved.set()

    def mark_written(self, services: Iterable[ServiceState]) -> None:
        """These services' rows hold their counters as they are now (just loaded)."""
        for s in services:
            self._written[s.id] = counters(s)

    async def run(self) -> None:
        """Writes `every` seconds after the first move, or as soon as moves pause for `QUIET`
        seconds: behind while requests stream, current soon after they stop."""
        loop = asyncio.get_running_loop()
        while True:
            await self._moved.wait()
            due = loop.time() + self.every
            while (left := due - loop.time()) > 0:
                self._moved.clear()
                try:
                    await asyncio.wait_for(self._moved.wait(), min(QUIET, left))
                except asyncio.TimeoutError:
                    break  # quiet
            self._moved.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write every service whose counters moved since last written; returns how many."""
        async with self.write_lock.shared(), self.write_lock.services_rows:
            return await self._write()

    async def flush_locked(self) -> int:
        """`flush` for a caller that holds the write lock exclusively (nobody else writes)."""
        return await self._write()

    async def _write(self) -> int:
        self._flushes += 1
        services = self.state.services
        touched, self._touched = self._touched, set()
        if self._flushes % FULL_EVERY == 0:
            candidates = list(services.values())
        else:
            candidates = [s for sid in touched if (s := services.get(sid)) is not None]
        moved = [(s, c) for s in candidates if self._written.get(s.id) != (c := counters(s))]
        if not moved or self.fence.epoch is None:
            return 0
        moved.sort(key=lambda m: m[0].id)
        try:
            await self.pool.execute(Q["engine.service_counters"], [s.id for s, _ in moved],
                                    [c[0] for _, c in moved], [c[1] for _, c in moved],
                                    [c[2] for _, c in moved], [c[3] for _, c in moved], self.fence.epoch)
        except BaseException:
            self._touched |= {s.id for s, _ in moved}  # written by the next attempt
            raise
        for s, c in moved:
            self._written[s.id] = c
        self.writes += 1
        return len(moved)
