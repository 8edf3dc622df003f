"""What every benchmark needs: a fresh, migrated database on the embedded (or given) server."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import uuid
from pathlib import Path
from typing import AsyncIterator

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edm.embedded import EmbeddedServers  # noqa: E402
from engine.infra import db  # noqa: E402


def server_url() -> str:
    """EDM_BENCH_DATABASE_URL, else the embedded PostgreSQL under .edm/bench."""
    url = os.environ.get("EDM_BENCH_DATABASE_URL", "")
    if url:
        return url
    return EmbeddedServers(ROOT / ".edm" / "bench").start(redis=False).database_url


@contextlib.asynccontextmanager
async def fresh_database(keep: bool = False) -> AsyncIterator[str]:
    base = server_url()
    name = f"edm_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(base)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    url = db.with_database(base, name)
    conn = await db.connect(url)
    await db.migrate(conn)
    await conn.close()
    try:
        yield url
    finally:
        if not keep:
            admin = await asyncpg.connect(base)
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()


async def seed_account(conn: asyncpg.Connection, contacts: int) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A user with `contacts` contacts (COPY), a sender and a template; returns their ids."""
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email, password_hash, role) VALUES ('bench', 'b@example.com', 'x', 'user') RETURNING id")
    await conn.copy_records_to_table(
        "contacts", columns=["user_id", "email", "name"],
        records=((user_id, f"r{i:08d}@example.test", f"R {i}") for i in range(contacts)))
    sender_id = await conn.fetchval("INSERT INTO senders (user_id, name) VALUES ($1, 'bench') RETURNING id", user_id)
    template_id = await conn.fetchval(
        "INSERT INTO templates (user_id, name, subject, text_body) VALUES ($1, 't', 'Hi {{name}}', 'Hello {{name}}') RETURNING id",
        user_id)
    await conn.execute("ANALYZE")
    return user_id, sender_id, template_id
