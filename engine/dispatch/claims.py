"""Claims: fill per-campaign in-memory buffers from the database in batches."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg

from engine.dispatch.hot_state import CampaignState, Claimed, HotState
from engine.infra.queries import Q

log = logging.getLogger("edm.engine.claims")


# Seconds before a campaign whose claim passed over held rows is claimed again (the holder is a
# short transaction: a cancel, a settle).
GAP_RETRY = 0.2


@dataclass(frozen=True)
class Claim:
    items: list[Claimed]
    # The first pending row passed over because another transaction held it (None = none): the
    # claim stops short of it, so the cursor never moves past a row that may stay pending.
    gap: int | None


async def claim_batch(conn: asyncpg.Connection, campaign_id: uuid.UUID, after_seq: int, limit: int) -> Claim:
    """The next `limit` pending subtasks after `after_seq`, up to the first row another
    transaction holds (FOR UPDATE SKIP LOCKED, then a look for what it passed over)."""
    async with conn.transaction():
        rows = await conn.fetch(Q["engine.claim"], campaign_id, after_seq, limit)
        # By position (the claim query's column order): thousands of rows per claim. The rows of
        # one claim share a few template ids: one id object each, not one per row.
        template_ids: dict[uuid.UUID, uuid.UUID] = {}
        items = [Claimed(r[0], r[1], r[2], template_ids.setdefault(r[3], r[3]), r[4], r[5], r[6]) for r in rows]
        bound = items[-1].seq if len(items) == limit else None
        gap = await conn.fetchval(Q["engine.claim_gap"], campaign_id, after_seq, bound, [i.id for i in items])
    if gap is not None:
        items = [i for i in items if i.seq < gap]
    return Claim(items, gap)


class Claimer:
    """Refills buffers that run low; one named task, woken by `want()`.

    A claim is twice what the campaign took since its last one, and at least what its owner's
    services can send in `horizon` seconds (between `least` and `batch`): a campaign on one slow
    service holds a handful of subtasks, not a full batch.
    """

    def __init__(self, pool: asyncpg.Pool, state: HotState, on_filled: Callable[[CampaignState], Awaitable[None]],
                 *, batch: int = 200, max_batch: int = 20_000, least: int = 4, horizon: float = 10.0):
        self.pool = pool
        self.state = state
        self.on_filled = on_filled
        self.batch = batch
        self.max_batch = max(batch, max_batch)
        self.least = min(least, batch)
        self.horizon = horizon
        self._wanted: dict[uuid.UUID, None] = {}
        self._wake = asyncio.Event()

    def low(self, c: CampaignState) -> bool:
        # Before its first claim (claim_size 0) a campaign is low only while its buffer is empty.
        return not c.exhausted and not c.refilling and len(c.buffer) <= c.claim_size // 2

    def size(self, c: CampaignState) -> int:
        """Twice what was taken since the last claim: a campaign many services feed on claims more."""
        c.claim_size = min(self.max_batch, max(self.floor(c), 2 * c.taken))
        c.taken = 0
        return c.claim_size

    def floor(self, c: CampaignState) -> int:
        """What the owner's usable services can send in `horizon` seconds, within [least, batch]."""
        u = self.state.users.get(c.user_id)
        if u is None:
            return self.least
        services = self.state.services
        need = 0.0
        for sid in u.services:  # stops as soon as the batch is reached: a user may have thousands
            s = services.get(sid)
            if s is None or not s.usable:
                continue
            if s.send_interval <= 0:
                return self.batch
            need += self.horizon / s.send_interval
            if need >= self.batch:
                return self.batch
        return max(self.least, math.ceil(need))

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
                    claim = await claim_batch(conn, c.id, c.cursor, size)
            except BaseException:
                self._wanted[campaign_id] = None  # still wanted when the task is restarted
                raise
            finally:
                c.refilling = False
            if self.state.campaigns.get(campaign_id) is not c:
                continue  # cancelled or reloaded while the claim ran
            items = claim.items
            if items:
                c.cursor = items[-1].seq
                c.buffer.extend(items)
            if claim.gap is not None:
                # Rows held by another transaction: not the end of the campaign; look again soon.
                asyncio.get_running_loop().call_later(GAP_RETRY, self._retry, campaign_id)
            elif len(items) < size:
                c.exhausted = True
            await self.on_filled(c)

    def _retry(self, campaign_id: uuid.UUID) -> None:
        c = self.state.campaigns.get(campaign_id)
        if c is not None:
            self.want(c)
