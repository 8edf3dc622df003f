"""Senders: the local part of a from-address, owned by one user, unique system-wide."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import asyncpg
import msgspec

from engine.domain.errors import Conflict, NotFound, SenderInUse, ValidationError
from engine.infra.queries import Q
from engine.store.rows import Page, page_of, row_struct

# Same rule as the CHECK on senders.name: 1-64 of A-Z a-z 0-9 . _ -, no dot at either end.
_NAME = re.compile(r"[A-Za-z0-9_-]([A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?")


class Sender(msgspec.Struct):
    id: uuid.UUID
    name: str
    created_at: datetime


def check_name(name: str) -> str:
    """Raise VALIDATION_ERROR (field `name`) unless `name` is a valid sender name."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise ValidationError(
            "sender name must be 1-64 characters of A-Z a-z 0-9 . _ -, "
            "not start or end with '.', and not contain '..'", field="name")
    return name


async def create(pool: asyncpg.Pool, user_id: uuid.UUID, name: str) -> Sender:
    row = await pool.fetchrow(Q["senders.insert"], user_id, check_name(name))
    if row is None:
        # Deliberately silent about who holds the name: it may be another user's.
        raise Conflict(f"sender name {name!r} is already taken", field="name")
    return row_struct(Sender, row)


async def list_own(pool: asyncpg.Pool, user_id: uuid.UUID, limit: int, offset: int) -> Page[Sender]:
    return page_of(Sender, await pool.fetch(Q["senders.list"], user_id, limit, offset), limit, offset)


async def get_own(pool: asyncpg.Pool, user_id: uuid.UUID, sender_id: uuid.UUID) -> Sender:
    row = await pool.fetchrow(Q["senders.get_own"], sender_id, user_id)
    if row is None:
        raise NotFound("sender not found", field="id")
    return row_struct(Sender, row)


async def delete(pool: asyncpg.Pool, user_id: uuid.UUID, sender_id: uuid.UUID) -> None:
    """Delete an own sender; SENDER_IN_USE while a pending, running or paused campaign uses it."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(Q["senders.lock_own"], sender_id, user_id) is None:
            raise NotFound("sender not found", field="id")
        if await conn.fetchval(Q["senders.in_use"], sender_id):
            raise SenderInUse("sender is used by a pending, running or paused campaign", field="id")
        await conn.execute(Q["senders.delete"], sender_id)
