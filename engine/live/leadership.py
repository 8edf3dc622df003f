"""Which engine leads, and since when: the lease row as the API and the dashboard show it."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from engine.infra.queries import Q


class LeaderView(msgspec.Struct, frozen=True):
    # host:pid:random of the engine process holding (or last holding) the lease.
    engine: str
    # Grows by one at every change of leader; binds carry it (fencing).
    epoch: int
    since: datetime
    renewed_at: datetime
    expires_at: datetime
    # False when the lease ran out and no engine has taken it yet (no engine dispatches).
    live: bool


async def read_leader(conn: asyncpg.Pool | asyncpg.Connection) -> LeaderView | None:
    """None until an engine has led once."""
    row = await conn.fetchrow(Q["leader.current"])
    if row is None:
        return None
    return LeaderView(engine=row["holder"], epoch=row["epoch"], since=row["since"], renewed_at=row["renewed_at"],
                      expires_at=row["expires_at"], live=row["live"])
