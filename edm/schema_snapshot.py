"""A version-independent description of the migrated schema, compared by a test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from engine.infra.queries import SQL_DIR

SNAPSHOT = SQL_DIR / "schema_snapshot.txt"

_COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') AS dflt
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY table_name, ordinal_position"""
_CONSTRAINTS = """
SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname = 'public' AND c.contype <> 'n' ORDER BY 1, 2"""
_INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"


async def describe(conn: asyncpg.Connection) -> str:
    lines = ["# columns"]
    lines += [f"{r['table_name']}.{r['column_name']} {r['data_type']} null={r['is_nullable']} default={r['dflt']}"
              for r in await conn.fetch(_COLUMNS)]
    lines.append("# constraints")
    lines += [f"{r['tbl']} {r['conname']}: {r['def']}" for r in await conn.fetch(_CONSTRAINTS)]
    lines.append("# indexes")
    lines += [f"{r['tablename']} {r['indexname']}: {r['indexdef']}" for r in await conn.fetch(_INDEXES)]
    return "\n".join(lines) + "\n"


def write_snapshot(settings) -> Path:  # type: ignore[no-untyped-def]
    from edm.runtime import resolve_urls
    from engine.infra import db

    urls = resolve_urls(settings, redis=False)

    async def go() -> str:
        conn = await db.connect(urls.database)
        try:
            # A scratch database, so the snapshot is of the migrations alone.
            await conn.execute("DROP DATABASE IF EXISTS edm_snapshot WITH (FORCE)")
            await conn.execute("CREATE DATABASE edm_snapshot")
        finally:
            await conn.close()
        scratch_url = db.with_database(urls.database, "edm_snapshot")
        conn = await db.connect(scratch_url)
        try:
            await db.migrate(conn)
            return await describe(conn)
        finally:
            await conn.close()

    SNAPSHOT.write_text(asyncio.run(go()))
    return SNAPSHOT

