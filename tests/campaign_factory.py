"""Factories for campaign tests: contacts and tags straight into the database, senders and
templates through the API."""

from __future__ import annotations

import uuid
from typing import Any, Iterable

import asyncpg

from tests.conftest import Api


def uid(x: Any) -> uuid.UUID:
    return x if isinstance(x, uuid.UUID) else uuid.UUID(str(x))


async def make_tag(pool: asyncpg.Pool, user_id: Any, name: str) -> str:
    return str(await pool.fetchval("INSERT INTO tags (user_id, name) VALUES ($1, $2) RETURNING id", uid(user_id), name))


async def make_contacts(pool: asyncpg.Pool, user_id: Any, emails: Iterable[str], tags: Iterable[str] = (),
                        fields: dict[str, Any] | None = None) -> list[str]:
    """Insert contacts (set-based) and give each of them every tag in `tags`."""
    emails = list(emails)
    async with pool.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch(
            "INSERT INTO contacts (user_id, email, name, fields) "
            "SELECT $1::uuid, e, split_part(e, '@', 1), $3::jsonb FROM unnest($2::text[]) AS e RETURNING id",
            uid(user_id), emails, fields or {})]
        tag_ids = [uid(t) for t in tags]
        if tag_ids:
            await conn.execute("INSERT INTO contact_tags (tag_id, contact_id) "
                               "SELECT t, c FROM unnest($1::uuid[]) AS t, unnest($2::uuid[]) AS c", tag_ids, ids)
    return [str(i) for i in ids]


async def make_sender_and_template(api: Api, sender: str | None = None) -> tuple[str, str]:
    s = await api.ok("POST", "/senders", json={"name": sender or f"s{uuid.uuid4().hex[:12]}"})
    t = await api.ok("POST", "/templates", json={"name": "t", "subject": "Hi {{ name }}",
                                                 "html_body": "<p>Hello {{ name }}</p>"})
    return s["id"], t["id"]


async def quota(pool: asyncpg.Pool, user_id: Any) -> tuple[int, int]:
    """(quota_remaining, sum of the user's quota log): the ledger says they are always equal."""
    row = await pool.fetchrow(
        "SELECT quota_remaining, (SELECT coalesce(sum(delta), 0) FROM quota_log WHERE user_id = $1) AS logged "
        "FROM users WHERE id = $1", uid(user_id))
    return int(row["quota_remaining"]), int(row["logged"])


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Row counts of every table a campaign save writes."""
    out = {}
    for table in ("campaigns", "campaign_templates", "campaign_tags", "campaign_events", "quota_log"):
        out[table] = int(await pool.fetchval(f"SELECT count(*) FROM {table}"))
    return out
