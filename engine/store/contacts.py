"""A user's contacts one at a time: create, read, update, delete, list with filters."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from engine.domain.errors import Conflict, NotFound
from engine.infra.queries import Q
from engine.store.contact_models import (
    Contact,
    ContactIn,
    ContactPatch,
    check_fields,
    unique_names,
)
from engine.store.rows import Page, page_of, row_struct


def _email_taken(email: str) -> Conflict:
    return Conflict(f"a contact with email {email!r} already exists", field="email")


async def _load(conn: asyncpg.Connection, user_id: uuid.UUID, contact_id: uuid.UUID) -> Contact:
    row = await conn.fetchrow(Q["contacts.get"], user_id, contact_id)
    if row is None:
        raise NotFound("contact not found", field="id")
    return row_struct(Contact, row)


async def _set_tags(conn: asyncpg.Connection, user_id: uuid.UUID, contact_id: uuid.UUID, names: list[str]) -> None:
    names = unique_names(names)
    if names:
        await conn.execute(Q["tags.ensure"], user_id, names)
    await conn.execute(Q["contacts.set_tags"], user_id, contact_id, names)


async def create_contact(pool: asyncpg.Pool, user_id: uuid.UUID, c: ContactIn) -> Contact:
    """Create one contact; tags named that the user lacks are created too."""
    check_fields(c.fields)
    name = "" if c.name is msgspec.UNSET else c.name
    async with pool.acquire() as conn, conn.transaction():
        contact_id = await conn.fetchval(Q["contacts.insert"], user_id, c.email, name, c.fields)
        if contact_id is None:
            raise _email_taken(c.email)
        if c.tags:
            await _set_tags(conn, user_id, contact_id, c.tags)
        return await _load(conn, user_id, contact_id)


async def get_contact(pool: asyncpg.Pool, user_id: uuid.UUID, contact_id: uuid.UUID) -> Contact:
    async with pool.acquire() as conn:
        return await _load(conn, user_id, contact_id)


async def update_contact(pool: asyncpg.Pool, user_id: uuid.UUID, contact_id: uuid.UUID, p: ContactPatch) -> Contact:
    """Apply a partial update; `fields` and `tags`, when given, replace the stored ones."""
    if p.fields is not None:
        check_fields(p.fields)
    async with pool.acquire() as conn, conn.transaction():
        try:
            found = await conn.fetchval(Q["contacts.update"], user_id, contact_id, p.email, p.name, p.fields)
        except asyncpg.UniqueViolationError:
            raise _email_taken(p.email or "") from None
        if found is None:
            raise NotFound("contact not found", field="id")
        if p.tags is not None:
            await _set_tags(conn, user_id, contact_id, p.tags)
        return await _load(conn, user_id, contact_id)


async def delete_contact(pool: asyncpg.Pool, user_id: uuid.UUID, contact_id: uuid.UUID) -> None:
    if await pool.fetchval(Q["contacts.delete"], user_id, contact_id) is None:
        raise NotFound("contact not found", field="id")


async def list_contacts(pool: asyncpg.Pool, user_id: uuid.UUID, *, limit: int, offset: int,
                        tag: str | None = None, q: str | None = None) -> Page[Contact]:
    """A page of contacts ordered by email; `tag` filters by tag name, `q` by email/name substring."""
    rows = await pool.fetch(Q["contacts.list"], user_id, tag, q, limit, offset)
    return page_of(Contact, rows, limit, offset)
