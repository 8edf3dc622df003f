"""The dispatcher's SQL: binds before the provider calls, one settlement transaction per flush,
completions. The dispatcher loop holds no SQL; this is also the seam its tests cross."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from engine.dispatch.lease import LeaseLost
from engine.infra.db import is_transient
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter

log = logging.getLogger("edm.engine.dispatcher")


@dataclass(frozen=True)
class ServiceLive:
    """A service's failure count and throttle, as the engine holds them."""

    id: uuid.UUID
    consecutive_failures: int
    throttled_until: datetime | None


@dataclass(frozen=True)
class Throttled:
    service_id: uuid.UUID
    message: str
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class Freeze:
    service_id: uuid.UUID
    reason: str | None
    consecutive_failures: int


@dataclass(frozen=True)
class SettleBatch:
    """Column arrays of one flush (engine.settle's parameters, in order, then each result's
    campaign: the campaigns a requeue locks first)."""

    ids: list[uuid.UUID]
    outcomes: list[str]
    message_ids: list[str | None]
    errors: list[str | None]
    settled_at: list[datetime]
    service_ids: list[uuid.UUID]
    attempted_at: list[datetime]
    give_back: list[bool]
    campaign_ids: list[uuid.UUID]


class Fence(Protocol):
    """The leader lease as the binds see it (engine/dispatch/lease.py)."""

    @property
    def epoch(self) -> int | None: ...

    def held(self) -> bool: ...

    async def wait_held(self) -> None: ...


class DispatchQueries:
    def __init__(self, pool: asyncpg.Pool, events: EventWriter, fence: Fence):
        self.pool = pool
        self.events = events
        self.fence = fence

    async def bind(self, ids: list[uuid.UUID], service_ids: list[uuid.UUID], from_addresses: list[str],
                   at: list[datetime]) -> set[uuid.UUID]:
        """Mark the subtasks `sending` (service, time) before any provider call; returns the ids
        that could not be bound (cancelled or settled since they were claimed).

        A transient failure is retried until the database answers (the statement is idempotent,
        so a commit whose reply was lost is not counted twice), but only while the lease holds;
        raises `LeaseLost` when the database says the lease is someone else's."""
        failures = 0
        while True:
            await self.fence.wait_held()
            try:
                rows = await self.pool.fetch(Q["engine.bind"], ids, service_ids, from_addresses, at, self.fence.epoch)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                log.warning("bind_retry attempt=%d error=%r", failures, exc)
                await asyncio.sleep(min(1.0, 0.05 * 2 ** min(failures, 6)))
                continue
            if rows and not rows[0]["leased"]:
                raise LeaseLost("the database refused a bind: the lease is no longer this engine's")
            return {r[0] for r in rows}

    async def settle(self, batch: SettleBatch, live: list[ServiceLive], throttled: list[Throttled],
                     freezes: list[Freeze], now: datetime) -> tuple[list[asyncpg.Record], set[uuid.UUID]]:
        """One transaction: results, the services' live state, throttle log rows, freezes.
        Returns the settle rows (`missed` ones were not written: see engine.settle) and the
        services this flush froze."""
        frozen: set[uuid.UUID] = set()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["engine.settle_plan"])
            if any(o in ("throttled", "not_sent") for o in batch.outcomes):
                await conn.fetch(Q["engine.lock_requeued_campaigns"], sorted(set(batch.campaign_ids)))
            rows = await conn.fetch(Q["engine.settle"], batch.ids, batch.outcomes, batch.message_ids, batch.errors,
                                    batch.settled_at, batch.service_ids, batch.attempted_at, batch.give_back)
            if live:
                await conn.execute(Q["engine.service_live_state"], [s.id for s in live],
                                   [s.consecutive_failures for s in live], [s.throttled_until for s in live])
            if throttled:
                await conn.execute(Q["engine.status_log_many"], [t.service_id for t in throttled],
                                   ["throttled"] * len(throttled), [t.message for t in throttled],
                                   [t.data for t in throttled], [None] * len(throttled), [t.at for t in throttled])
            for f in freezes:
                if await conn.fetchval(Q["engine.freeze"], f.service_id, f.reason, f.consecutive_failures, now):
                    frozen.add(f.service_id)
        return rows, frozen

    async def complete(self, campaign_ids: list[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        """Complete the campaigns whose every subtask is settled; returns those completed."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(Q["engine.complete_campaigns"], campaign_ids, now)
            await self.events.write(conn, [CampaignEvent(r["id"], "completed", "every subtask is settled",
                                                         {"sent": r["sent_count"], "failed": r["failed_count"]})
                                           for r in rows], now)
        return [r["id"] for r in rows]
