"""A user's tags: create, list with contact counts, rename, delete."""

from __future__ import annotations

import uuid

import asyncpg

from engine.domain.errors import Conflict, NotFound
from engine.infra.queries import Q
from engine.store.contact_models import Tag
from engine.store.rows import Page, page_of, row_struct


def _taken(name: str) -> Conflict:
    return Conflict(f"a tag named {name!r} already exists", field="name")


async def create_tag(pool: asyncpg.Pool, user_id: uuid.UUID, name: str) -> Tag:
    row = await pool.fetchrow(Q["tags.insert"], user_id, name)
    if row is None:
        raise _taken(name)
    return row_struct(Tag, row)


async def get_tag(pool: asyncpg.Pool, user_id: uuid.UUID, tag_id: uuid.UUID) -> Tag:
    row = await pool.fetchrow(Q["tags.get"], user_id, tag_id)
    if row is None:
        raise NotFound("tag not found", field="id")
    return row_struct(Tag, row)


async def list_tags(pool: asyncpg.Pool, user_id: uuid.UUID, limit: int, offset: int) -> Page[Tag]:
    return page_of(Tag, await pool.fetch(Q["tags.list"], user_id, limit, offset), limit, offset)


async def rename_tag(pool: asyncpg.Pool, user_id: uuid.UUID, tag_id: uuid.UUID, name: str) -> Tag:
    try:
        row = await pool.fetchrow(Q["tags.rename"], user_id, tag_id, name)
    except asyncpg.UniqueViolationError:
        raise _taken(name) from None
    if row is None:
        raise NotFound("tag not found", field="id")
    return row_struct(Tag, row)


async def delete_tag(pool: asyncpg.Pool, user_id: uuid.UUID, tag_id: uuid.UUID) -> None:
    """Delete the tag and its links to contacts; a tag that campaigns select by stays."""
    try:
        deleted = await pool.fetchval(Q["tags.delete"], user_id, tag_id)
    except asyncpg.ForeignKeyViolationError:
        raise Conflict("the tag is used by a campaign", field="id") from None
    if deleted is None:
        raise NotFound("tag not found", field="id")
