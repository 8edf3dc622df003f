"""Campaign commands on running/paused campaigns: pause, resume, cancel, quota top-up."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from engine.domain.campaign_limits import may_activate
from engine.domain.errors import ConcurrentCampaignLimit, InvalidState, NotFound, QuotaInsufficient
from engine.domain.pause_rules import MESSAGES
from engine.domain.quota_units import cancel_refund
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter
from engine.store import quota_ledger


async def _lock(conn: asyncpg.Connection, campaign_id: uuid.UUID) -> asyncpg.Record:
    """The campaign row, locked for this transaction; NOT_FOUND when there is none."""
    row = await conn.fetchrow(Q["engine.lock_campaign"], campaign_id)
    if row is None:
        raise NotFound("campaign not found", field="id")
    return row


def _by(user_id: uuid.UUID | None) -> str | None:
    return str(user_id) if user_id else None


async def cancel(pool: asyncpg.Pool, events: EventWriter, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None,
                 now: datetime) -> int:
    """Cancel a running/paused campaign; refunds exactly the never-attempted subtasks."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock(conn, campaign_id)
        if row["status"] not in ("running", "paused"):
            raise InvalidState(f"a {row['status']} campaign cannot be cancelled here", field="status")
        n = await conn.fetchval(Q["engine.cancel_subtasks"], campaign_id, now)
        refund = cancel_refund(n, row["total"], row["reserved"], row["released"])
        await conn.execute(Q["engine.cancel_campaign"], campaign_id, now, n, refund)
        if refund:
            await quota_ledger.apply(conn, row["user_id"], refund, "refund", campaign_id=campaign_id,
                                     operator_id=by_user_id, reason="campaign cancelled")
        await events.write(conn, [CampaignEvent(campaign_id, "cancelled", "campaign cancelled",
                                                {"cancelled": n, "refunded": refund,
                                                 "by": _by(by_user_id)})], now)
    return n


async def refund_units(pool: asyncpg.Pool, campaign_id: uuid.UUID, n: int, reason: str) -> int:
    """Give back the units of `n` subtasks cancelled after the campaign's cancel (a throttled
    request settling across it); as a cancel does, they count as released."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["engine.lock_campaign"], campaign_id)
        units = cancel_refund(n, row["total"], row["reserved"], row["released"]) if row is not None else 0
        if units:
            await conn.execute(Q["engine.release_units"], campaign_id, units)
            await quota_ledger.apply(conn, row["user_id"], units, "refund", campaign_id=campaign_id, reason=reason)
    return units


async def release_units(pool: asyncpg.Pool, campaign_id: uuid.UUID, n: int, reason: str) -> int:
    """Give the owner back the units of `n` subtasks never offered to a provider; returns the units.

    They leave `reserved` for `released`, so the campaign's shortfall does not move.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["engine.lock_campaign"], campaign_id)
        units = min(n, row["reserved"]) if row is not None else 0
        if units:
            await conn.execute(Q["engine.release_units"], campaign_id, units)
            await quota_ledger.apply(conn, row["user_id"], units, "refund", campaign_id=campaign_id, reason=reason)
    return units


async def pause(pool: asyncpg.Pool, events: EventWriter, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None,
                now: datetime) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock(conn, campaign_id)
        if row["status"] not in ("running", "paused"):
            raise InvalidState(f"a {row['status']} campaign cannot be paused", field="status")
        if row["pause_reason"] == "USER":
            return
        await conn.execute(Q["engine.user_pause"], campaign_id)
        await events.write(conn, [CampaignEvent(campaign_id, "paused", MESSAGES["USER"],
                                                {"reason": "USER", "by": _by(by_user_id)})],
                           now)


async def resume(pool: asyncpg.Pool, events: EventWriter, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None,
                 now: datetime, max_active: int = 0) -> None:
    """Back to running; the routing checks run right after and may pause it again with a reason.

    A campaign paused by a person holds no slot: resuming it needs one under `max_active`.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock(conn, campaign_id)
        # A running campaign answers 409 like any other state that is not paused: a silent 200 that
        # writes nothing told operators their resume had done something.
        if row["status"] != "paused":
            raise InvalidState(f"a {row['status']} campaign cannot be resumed (only a paused one)", field="status")
        if max_active > 0 and row["pause_reason"] == "USER" and not may_activate(
                await conn.fetchval(Q["fanout.active_campaigns"], row["user_id"], campaign_id), max_active):
            raise ConcurrentCampaignLimit(f"at most {max_active} campaigns may be active at once; pause or "
                                          "finish another first", field="id")
        await conn.execute(Q["engine.user_resume"], campaign_id)
        await events.write(conn, [CampaignEvent(campaign_id, "resumed", "campaign resumed",
                                                {"by": _by(by_user_id)})], now)


async def charge_shortfalls(pool: asyncpg.Pool, events: EventWriter, user_id: uuid.UUID,
                            now: datetime) -> list[uuid.UUID]:
    """Charge the extra units campaigns paused for NO_USER_QUOTA still need, oldest first.

    Each campaign is locked and re-read before its charge, in the transaction that charges it,
    in the same lock order as cancel (campaign, then user): two concurrent calls cannot charge
    one shortfall twice, a campaign cancelled meanwhile is not charged, and neither deadlocks
    with a cancel.
    """
    covered = []
    for candidate in await pool.fetch(Q["engine.user_shortfall_campaigns"], user_id):
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(Q["engine.lock_campaign"], candidate["id"])
                if row is None or (row["status"], row["pause_reason"]) != ("paused", "NO_USER_QUOTA"):
                    continue  # cancelled, resumed or completed since the list was read
                need = row["total"] - row["released"] - row["reserved"]
                if need > 0:
                    await quota_ledger.apply(conn, user_id, -need, "charge", campaign_id=row["id"],
                                             reason="recipients beyond the reservation")
                    await conn.execute(Q["engine.take_reservation"], row["id"], need)
                    await events.write(conn, [CampaignEvent(row["id"], "charged", f"{need} more units charged",
                                                            {"units": need})], now)
        except QuotaInsufficient:
            break  # oldest first: a younger campaign does not jump the queue
        covered.append(candidate["id"])
    return covered
