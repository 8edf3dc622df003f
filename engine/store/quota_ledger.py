"""The user send-quota ledger: every balance change is one log row, in the same transaction."""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from engine.domain.errors import QuotaInsufficient
from engine.infra.queries import Q
from engine.store.rows import Page, QuotaEntry, page_of, row_struct

Kind = Literal["adjust", "reserve", "refund", "charge"]


async def apply(conn: asyncpg.Connection, user_id: uuid.UUID, delta: int, kind: Kind, *,
                campaign_id: uuid.UUID | None = None, operator_id: uuid.UUID | None = None,
                reason: str = "") -> QuotaEntry:
    """Move a user's balance by `delta` (call inside a transaction).

    A change that would drive the balance below zero raises QUOTA_INSUFFICIENT and writes nothing.
    """
    balance = await conn.fetchval(Q["quota.lock_user"], user_id)
    if balance is None:
        raise LookupError(user_id)
    if balance + delta < 0:
        raise QuotaInsufficient(
            f"quota insufficient: {-delta} needed, {balance} remaining",
            details={"needed": -delta, "remaining": balance},
        )
    row = await conn.fetchrow(Q["quota.apply"], user_id, delta, kind, campaign_id, operator_id, reason)
    return row_struct(QuotaEntry, row)


async def history(pool: asyncpg.Pool, user_id: uuid.UUID, limit: int, offset: int) -> Page[QuotaEntry]:
    """A user's ledger, newest first."""
    return page_of(QuotaEntry, await pool.fetch(Q["quota.log"], user_id, limit, offset), limit, offset)
