"""Retry what failed: a finished campaign's retryable failures go back to pending as a new
attempt of the same campaign (same id, same counters, `attempts` + 1), reserving quota like a save."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from engine.domain.errors import InvalidState, NotFound
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter
from engine.store import quota_ledger


async def retry_failed(pool: asyncpg.Pool, events: EventWriter, campaign_id: uuid.UUID, actor_id: uuid.UUID,
                       is_admin: bool, now: datetime) -> int:
    """Re-queue the retryable failed subtasks; QUOTA_INSUFFICIENT (and no change) when not covered."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["engine.lock_campaign"], campaign_id)
        if row is None or not (is_admin or row["user_id"] == actor_id):
            raise NotFound("campaign not found", field="id")
        if row["status"] not in ("completed", "cancelled"):
            raise InvalidState(f"a {row['status']} campaign cannot be retried; wait until it is finished",
                               field="status")
        if await conn.fetchval(Q["retention.archived_at"], campaign_id) is not None:
            raise InvalidState("the campaign is archived (edm archive): its recipients are history", field="id")
        ids = [r["id"] for r in await conn.fetch(Q["feedback.retryable"], campaign_id, row["user_id"])]
        if not ids:
            raise InvalidState("no failed recipient is worth retrying", field="id")
        await quota_ledger.apply(conn, row["user_id"], -len(ids), "reserve", campaign_id=campaign_id,
                                 operator_id=actor_id, reason="retry of failed recipients")
        await conn.execute(Q["feedback.requeue"], ids)
        await conn.execute(Q["feedback.reopen"], campaign_id, len(ids))
        await events.write(conn, [CampaignEvent(campaign_id, "retried", f"{len(ids)} failed recipients re-queued",
                                                {"requeued": len(ids), "by": str(actor_id)})], now)
    return len(ids)
