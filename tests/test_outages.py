"""Outages answer 503 with the dependency named, and the API serves again by itself."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from api.app import init_app
from edm.embedded import EmbeddedRedis
from edm.runtime import Urls, open_deps
from engine.infra.passwords import Passwords
from engine.store.accounts import create_user
from tests.conftest import Api

WRONG = {"username": "root", "password": "not-the-password"}


async def _health(client: TestClient) -> tuple[int, dict]:
    resp = await client.get("/health")
    return resp.status, (await resp.json())["data"]


async def test_redis_outage_answers_503_and_login_falls_back(settings, database_url, clock, tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    url = redis.start()
    try:
        async with open_deps(settings, Urls(database_url, url), clock=clock,
                             passwords=Passwords(time_cost=1, memory_cost=1024)) as d:
            await create_user(d.pool, d.passwords, "root", "root@example.com", "admin-password", role="admin")
            async with TestClient(TestServer(init_app(d))) as client:
                admin = await Api(client).login("root", "admin-password")
                redis.stop()
                resp = await client.post("/api/v1/tags", json={"name": "vip"},
                                         headers={"Authorization": f"Bearer {admin.token}", "Idempotency-Key": "k1"})
                body = await resp.json()
                assert resp.status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE", body
                assert body["error"]["details"]["dependency"] == "redis" and int(resp.headers["Retry-After"]) > 0
                assert await d.pool.fetchval("SELECT count(*) FROM tags") == 0
                assert await _health(client) == (503, {"status": "degraded", "database": True, "redis": False})
                # Login goes on without Redis (counters in PostgreSQL), and so does its throttling.
                await Api(client).login("root", "admin-password")
                for _ in range(settings.login_max_failures):
                    await Api(client).err("POST", "/auth/login", 401, "INVALID_CREDENTIALS", json=WRONG)
                resp = await client.post("/api/v1/auth/login", json={"username": "root", "password": "admin-password"})
                assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
                # Redis comes back on its port: the API serves again without a restart.
                redis.start()
                assert (await _health(client))[0] == 200
                await admin.ok("POST", "/tags", json={"name": "vip"}, headers={"Idempotency-Key": "k1"})
    finally:
        redis.stop()


async def test_killed_database_connections_answer_503_then_recover(admin: Api, deps, server_urls: Urls) -> None:
    await admin.ok("GET", "/users")
    name = await deps.pool.fetchval("SELECT current_database()")
    outsider = await asyncpg.connect(server_urls.database)
    try:
        killed = await outsider.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1) t", name)
    finally:
        await outsider.close()
    assert killed >= 1
    answers = []
    for _ in range(deps.settings.db_pool_size + 2):
        status, body = await admin.call("GET", "/users")
        answers.append(status)
        assert status in (200, 503), body
        if status == 503:
            assert body["error"]["details"] == {"dependency": "database"}
        else:
            break
    assert answers[-1] == 200, answers
