"""Claims: fill per-campaign in-memory buffers from the database in batches."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Awaitable, Callable

import asyncpg

from engine.dispatch.hot_state import CampaignState, Claimed, HotState
from engine.infra.queries import Q

log = logging.getLogger("edm.engine.claims")


async def claim_batch(conn: asyncpg.Connection, campaign_id: uuid.UUID, after_seq: int, limit: int) -> list[Claimed]:
    """The next `limit` pending subtasks after `after_seq` (read only: the bind is the gate)."""
    rows = await conn.fetch(Q["engine.claim"], campaign_id, after_seq, limit)
    # By position (the claim query's column order): thousands of rows per claim.
    return [Claimed(r[0], r[1], r[2], r[3], r[4], r[5] or {}) for r in rows]


class Claimer:
    """Refills buffers that run low; one named task, woken by `want()`."""

    def __init__(self, pool: asyncpg.Pool, state: HotState, on_filled: Callable[[CampaignState], Awaitable[None]],
                 *, batch: int = 200, max_batch: int = 20_000):
        self.pool = pool
        self.state = state
        self.on_filled = on_filled
        self.batch = batch
        self.max_batch = max(batch, max_batch)
        self._wanted: dict[uuid.UUID, None] = {}
        self._wake = asyncio.Event()

    def low(self, c: CampaignState) -> bool:
        return not c.exhausted and not c.refilling and len(c.buffer) <= max(self.batch, c.claim_size) // 2

    def size(self, c: CampaignState) -> int:
        """Twice what was taken since the last claim: a campaign many services feed on claims more."""
        c.claim_size = min(self.max_batch, max(self.batch, 2 * c.taken))
        c.taken = 0
        return c.claim_size

    def want(self, c: CampaignState) -> None:
        if self.low(c):
            c.refilling = True
            self._wanted[c.id] = None
            self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._wanted:
                self._wake.clear()
                await self._wake.wait()
                continue
            campaign_id = next(iter(self._wanted))
            del self._wanted[campaign_id]
            c = self.state.campaigns.get(campaign_id)
            if c is None:
                continue
            size = self.size(c)
            try:
                async with self.pool.acquire() as conn:
                    items = await claim_batch(conn, c.id, c.cursor, size)
            except BaseException:
                self._wanted[campaign_id] = None  # still wanted when the task is restarted
                raise
            finally:
                c.refilling = False
            if self.state.campaigns.get(campaign_id) is not c:
                continue  # cancelled or reloaded while the claim ran
            if items:
                c.cursor = items[-1].seq
                c.buffer.extend(items)
            if len(items) < size:
                c.exhausted = True
            await self.on_filled(c)
