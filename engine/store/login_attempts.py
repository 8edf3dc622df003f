"""Login throttle counters held in PostgreSQL: the fallback while Redis is unavailable.

The same rule as the Redis counters (engine.domain.login_rules); the rows of one attempt are
locked in key order, so concurrent attempts on one account are counted one after the other.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from engine.domain.login_rules import Counter, Decision, ThrottleRule, decide
from engine.infra.queries import Q


async def reserve(pool: asyncpg.Pool, rule: ThrottleRule, pair_key: str, account_key: str,
                  now: datetime) -> Decision:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(Q["login_attempts.ensure"], [account_key, pair_key])
        rows = {r["key"]: r for r in await conn.fetch(Q["login_attempts.lock"], [account_key, pair_key])}
        decision = decide(rule, _counter(rows[pair_key]), _counter(rows[account_key]), now)
        if decision.allowed:
            for key, c in ((pair_key, decision.pair), (account_key, decision.account)):
                await conn.execute(Q["login_attempts.store"], key, c.attempts, c.started, c.next_allowed)
        return decision


async def clear(pool: asyncpg.Pool, keys: list[str]) -> None:
    await pool.execute(Q["login_attempts.clear"], keys)


async def clear_account(pool: asyncpg.Pool, account_key: str, pair_prefix: str) -> int:
    """Forget every counter of one account (the admin's unlock); returns how many were held."""
    return int(await pool.fetchval(Q["login_attempts.clear_account"], account_key, pair_prefix))


def _counter(row: asyncpg.Record) -> Counter:
    return Counter(row["attempts"], row["started"], row["next_allowed"])
