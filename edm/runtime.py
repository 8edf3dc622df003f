"""The composition root: builds every collaborator once and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterator

import asyncpg
import redis.asyncio as aioredis

from api.deps import Deps
from api.tokens import TokenIssuer
from edm.embedded import EmbeddedServers
from engine.domain.errors import ServiceUnavailable
from engine.infra import db
from engine.infra.clock import Clock, SystemClock
from engine.infra.config import Settings
from engine.infra.passwords import Passwords
from engine.infra.secret_box import SecretBox

log = logging.getLogger("edm")


@dataclass
class Urls:
    database: str
    redis: str


def resolve_urls(settings: Settings, *, redis: bool = True) -> Urls:
    """Use the configured URLs; start embedded servers for whichever is missing."""
    need_pg, need_redis = not settings.database_url, redis and not settings.redis_url
    if not need_pg and not need_redis:
        return Urls(settings.database_url, settings.redis_url)
    embedded = EmbeddedServers(settings.data_path).start(postgres=need_pg, redis=need_redis)
    return Urls(settings.database_url or embedded.database_url, settings.redis_url or embedded.redis_url)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextlib.asynccontextmanager
async def open_deps(settings: Settings, urls: Urls, clock: Clock | None = None,
                    passwords: Passwords | None = None) -> AsyncIterator[Deps]:
    """Open the pool and Redis, apply migrations, and yield the handlers' dependencies."""
    try:
        conn = await db.connect(urls.database)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailable(f"cannot reach the database: {_reason(exc)}",
                                 details={"dependency": "database"}) from None
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    pool: asyncpg.Pool = await db.create_pool(urls.database, size=settings.db_pool_size)
    redis = aioredis.from_url(urls.redis)
    try:
        yield Deps(
            settings=settings,
            pool=pool,
            redis=redis,
            clock=clock or SystemClock(),
            passwords=passwords or Passwords(),
            box=SecretBox.from_settings(settings.secret_key, settings.data_path),
            tokens=TokenIssuer.from_settings(settings.jwt_secret, settings.jwt_ttl, settings.data_path),
        )
    finally:
        await redis.aclose()
        await pool.close()
