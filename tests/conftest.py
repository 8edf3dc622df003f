"""Real PostgreSQL and Redis for every test: embedded by default, or EDM_TEST_DATABASE_URL /
EDM_TEST_REDIS_URL. Each test gets its own database, cloned from a migrated template."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from api.app import init_app
from api.deps import Deps
from edm.embedded import EmbeddedRedis, EmbeddedServers
from edm.runtime import Urls, open_deps
from engine.infra import db
from engine.infra.clock import FakeClock
from engine.infra.config import Settings
from engine.infra.passwords import Passwords

ROOT = Path(__file__).resolve().parent.parent
# One template per test session, so parallel sessions on one server never drop each other's.
TEMPLATE = f"edm_test_template_{os.getpid()}"


@pytest.fixture(scope="session")
def server_urls() -> Urls:
    database = os.environ.get("EDM_TEST_DATABASE_URL", "")
    redis_url = os.environ.get("EDM_TEST_REDIS_URL", "")
    embedded = EmbeddedServers(ROOT / ".edm" / "test").start(redis=False) if not database else None
    # A Redis of this session's own: parallel sessions flush their databases freely.
    own_redis = EmbeddedRedis(ROOT / ".edm" / "test" / f"redis-{os.getpid()}") if not redis_url else None
    urls = Urls(database or embedded.database_url, redis_url or own_redis.start())  # type: ignore[union-attr]

    async def build_template() -> None:
        admin = await asyncpg.connect(urls.database)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await admin.close()
        conn = await db.connect(db.with_database(urls.database, TEMPLATE))
        try:
            await db.migrate(conn)
        finally:
            await conn.close()

    async def drop_template() -> None:
        admin = await asyncpg.connect(urls.database)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        finally:
            await admin.close()

    asyncio.run(build_template())
    yield urls
    asyncio.run(drop_template())
    if own_redis is not None:
        own_redis.stop()
        shutil.rmtree(own_redis.data_dir, ignore_errors=True)
    if embedded is not None:
        embedded.stop()


@pytest.fixture
async def database_url(server_urls: Urls) -> AsyncIterator[str]:
    name = f"edm_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server_urls.database)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    yield db.with_database(server_urls.database, name)
    admin = await asyncpg.connect(server_urls.database)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def redis_url(server_urls: Urls) -> AsyncIterator[str]:
    client = aioredis.from_url(server_urls.redis)
    await client.flushdb()
    await client.aclose()
    yield server_urls.redis


@pytest.fixture
def clock() -> FakeClock:
    from datetime import datetime, timezone

    return FakeClock(datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No shared overview snapshots: tests change rows and read the overview at once.
    return Settings.from_env({}, data_dir=str(tmp_path / "data"), jwt_secret="test-secret-" + "x" * 40,
                             overview_cache_seconds=0)


@pytest.fixture
async def deps(settings: Settings, database_url: str, redis_url: str, clock: FakeClock) -> AsyncIterator[Deps]:
    # argon2id still, with small costs so a suite that creates hundreds of users stays quick.
    async with open_deps(settings, Urls(database_url, redis_url), clock=clock,
                         passwords=Passwords(time_cost=1, memory_cost=1024)) as d:
        yield d


class Api:
    """A test client that speaks the envelope and remembers a token."""

    def __init__(self, client: TestClient, token: str | None = None):
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> "Api":
        return Api(self.client, token)

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None, expect: int | None = None) -> tuple[int, dict[str, Any]]:
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        resp = await self.client.request(method, "/api/v1" + path, json=json, data=data, headers=h)
        body = await resp.json(content_type=None)
        if expect is not None:
            assert resp.status == expect, (resp.status, body)
        return resp.status, body

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self.call(method, path, **kw)
        assert 200 <= status < 300 and body["success"], (status, body)
        return body["data"]

    async def err(self, method: str, path: str, status: int, code: str, field: str | None = None, **kw: Any) -> dict:
        got, body = await self.call(method, path, **kw)
        assert got == status, (got, body)
        assert body["success"] is False and body["error"]["code"] == code, body
        if field is not None:
            assert body["error"]["details"].get("field") == field, body
        return body["error"]

    async def login(self, username: str, password: str) -> "Api":
        data = await self.as_(None).ok("POST", "/auth/login", json={"username": username, "password": password})
        return self.as_(data["token"])

    async def new_user(self, username: str | None = None, *, quota: int = 0, role: str = "user",
                       password: str = "password-123") -> tuple[dict, "Api"]:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        user = await self.ok("POST", "/users", json={"username": username, "email": f"{username}@example.com",
                                                     "password": password, "role": role, "quota": quota})
        return user, await self.login(username, password)


@pytest.fixture
async def client(deps: Deps) -> AsyncIterator[TestClient]:
    app = init_app(deps)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def admin(client: TestClient, deps: Deps) -> Api:
    """An API client logged in as an administrator created straight in the database."""
    from engine.store.accounts import create_user

    await create_user(deps.pool, deps.passwords, "root", "root@example.com", "admin-password", role="admin")
    return await Api(client).login("root", "admin-password")


@pytest.fixture
def anon(client: TestClient) -> Api:
    return Api(client)
