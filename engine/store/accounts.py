"""User accounts: creation (shared by the API, the CLI bootstrap and the demo seed), reads,
updates and the state tokens and logins are checked against."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

import asyncpg

from engine.domain.errors import Conflict, LastAdmin, NotFound
from engine.infra.passwords import Passwords
from engine.infra.queries import Q
from engine.store import quota_ledger
from engine.store.rows import Page, User, page_of, row_struct


async def create_user(pool: asyncpg.Pool, passwords: Passwords, username: str, email: str, password: str, *,
                      role: str = "user", quota: int = 0, enabled: bool = True,
                      operator_id: uuid.UUID | None = None) -> User:
    password_hash = await passwords.hash_async(password)
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(Q["users.by_username"], username):
            raise Conflict(f"username {username!r} is taken", field="username")
        row = await conn.fetchrow(Q["users.insert"], username, email, password_hash, role, enabled)
        if quota:
            await quota_ledger.apply(conn, row["id"], quota, "adjust", operator_id=operator_id,
                                     reason="initial quota")
        return row_struct(User, await conn.fetchrow(Q["users.get"], row["id"]))


async def list_users(pool: asyncpg.Pool, limit: int, offset: int) -> Page[User]:
    return page_of(User, await pool.fetch(Q["users.list"], limit, offset), limit, offset)


async def get_user(pool: asyncpg.Pool, user_id: uuid.UUID) -> User:
    row = await pool.fetchrow(Q["users.get"], user_id)
    if row is None:
        raise NotFound("user not found", field="id")
    return row_struct(User, row)


async def update_user(pool: asyncpg.Pool, user_id: uuid.UUID, *, email: str | None, role: str | None,
                      enabled: bool | None, password_hash: str | None) -> User:
    """Change what is given; a new password or a disable bumps the token version (tokens die).

    Demoting or disabling the last enabled administrator is refused (`LAST_ADMIN`).
    """
    async with pool.acquire() as conn, conn.transaction():
        if role == "user" or enabled is False:
            await guard_last_admin(conn, user_id, "role" if role == "user" else "enabled")
        row = await conn.fetchrow(Q["users.update"], user_id, email, role, enabled, password_hash)
    if row is None:
        raise NotFound("user not found", field="id")
    return row_struct(User, row)


async def guard_last_admin(conn: asyncpg.Connection, user_id: uuid.UUID, field: str) -> None:
    """Raise LastAdmin when `user_id` is the only enabled administrator (call in a transaction)."""
    admins = [r["id"] for r in await conn.fetch(Q["users.lock_enabled_admins"])]
    if admins == [user_id]:
        raise LastAdmin("the last enabled administrator cannot be removed", field=field)


async def set_password(pool: asyncpg.Pool, user_id: uuid.UUID, password_hash: str) -> int:
    """Store a new password hash; returns the new token version (every older token dies)."""
    version = await pool.fetchval(Q["users.set_password"], user_id, password_hash)
    if version is None:
        raise NotFound("user not found", field="id")
    return int(version)


async def login_state(pool: asyncpg.Pool, username: str) -> asyncpg.Record | None:
    """id, role, enabled, password hash and token version of an account, by name."""
    return await pool.fetchrow(Q["users.by_username"], username)


async def record_login(pool: asyncpg.Pool, user_id: uuid.UUID, now: datetime) -> User:
    await pool.execute(Q["users.touch_login"], user_id, now)
    return await get_user(pool, user_id)


class AuthState(NamedTuple):
    id: uuid.UUID
    username: str
    role: str
    enabled: bool
    token_version: int


async def auth_state(pool: asyncpg.Pool, user_id: uuid.UUID) -> AuthState | None:
    """What a bearer token is checked against on every call."""
    row = await pool.fetchrow(Q["users.auth_state"], user_id)
    return None if row is None else AuthState(row["id"], row["username"], row["role"], row["enabled"],
                                              row["token_version"])
