"""The asyncpg pool and the migration runner."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import orjson

from engine.infra.queries import SQL_DIR

log = logging.getLogger("edm.db")
MIGRATIONS = SQL_DIR / "migrations"
# Any constant works; it only has to be the same for every process of this product.
MIGRATION_LOCK = 7_201_001


# SQLSTATE classes of trouble that passes: connection exceptions (08), insufficient resources
# (53: too many connections), operator intervention (57: shutdown, restart, cannot connect now),
# and the two rollbacks a retry fixes (40001 serialization failure, 40P01 deadlock).
_TRANSIENT_CLASSES = ("08", "53", "57")
_TRANSIENT_STATES = ("40001", "40P01")


def is_transient(exc: BaseException) -> bool:
    """A database error that a later retry of the same work can get past (the server went away,
    restarts, refuses connections for now); anything else is a bug or poisoned data."""
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True  # includes ConnectionError: refused, reset, unreachable
    if isinstance(exc, asyncpg.exceptions._base.InternalClientError):
        # Seen when a server kills a backend in the middle of a statement: the protocol state
        # of that connection is broken, the pool replaces it.
        return "cannot switch to state" in str(exc)
    if isinstance(exc, asyncpg.InterfaceError):
        # "connection is closed" / "pool is closing" pass; "another operation is in progress" is a bug.
        return "clos" in str(exc)
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    return False


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog")


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """No reset statement when a connection goes back to the pool.

    asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release: one more round trip per API request (14 % of the API's samples under
    load). Nothing here leaves session state behind: settings are `SET LOCAL`, advisory locks
    `_xact_` (the migration's session lock is on its own connection), cursors live inside
    transactions, and the one LISTEN removes its listener before it releases. asyncpg still
    rolls back a transaction left open and drops listener callbacks on release.
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(url: str, *, size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=size, init=_init_connection,
                                     connection_class=_PooledConnection)
    assert pool is not None
    return pool


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


def with_database(url: str, name: str) -> str:
    """The same server's URL with another database (host:port and socket-style URLs alike)."""
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def migration_files(directory: Path = MIGRATIONS) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        version = int(path.name.split("_", 1)[0])
        found.append((version, path.stem, path))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migrations share a version number")
    return found


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, path in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            log.info("migration_applied name=%s", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied
