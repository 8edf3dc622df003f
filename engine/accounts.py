"""User creation, shared by the API, the CLI bootstrap and the demo seed."""

from __future__ import annotations

import uuid

import asyncpg

from engine import quota_ledger
from engine.errors import Conflict
from engine.models import User, row_struct
from engine.passwords import Passwords
from engine.queries import Q


async def create_user(pool: asyncpg.Pool, passwords: Passwords, username: str, email: str, password: str, *,
                      role: str = "user", quota: int = 0, enabled: bool = True,
                      operator_id: uuid.UUID | None = None) -> User:
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(Q["users.by_username"], username):
            raise Conflict(f"username {username!r} is taken", field="username")
        row = await conn.fetchrow(Q["users.insert"], username, email, passwords.hash(password), role, enabled)
        if quota:
            await quota_ledger.apply(conn, row["id"], quota, "adjust", operator_id=operator_id,
                                     reason="initial quota")
        return row_struct(User, await conn.fetchrow(Q["users.get"], row["id"]))
