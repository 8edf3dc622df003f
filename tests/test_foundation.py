"""Cross-cutting guarantees: schema snapshot, OpenAPI coverage, idempotency, health, layering, envelope."""

from __future__ import annotations

import ast
import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from api.app import build_router
from edm.schema_snapshot import SNAPSHOT, describe
from tests.conftest import Api

ROOT = Path(__file__).resolve().parent.parent


async def test_migrated_schema_matches_snapshot(deps) -> None:
    async with deps.pool.acquire() as conn:
        current = await describe(conn)
    assert current == SNAPSHOT.read_text(), "schema drifted from sql/schema_snapshot.txt: run `edm schema-snapshot`"


async def test_openapi_describes_every_route(anon: Api) -> None:
    resp = await anon.client.get("/api/v1/openapi.json")
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    for spec in build_router().specs:
        op = doc["paths"]["/api/v1" + spec.path][spec.method.lower()]
        assert op["summary"] == spec.summary
        if spec.body is not None:
            assert "requestBody" in op
    assert "User" in doc["components"]["schemas"]


async def test_health_reports_database_and_redis(anon: Api) -> None:
    for path in ("/api/v1/health", "/health"):
        resp = await anon.client.get(path)
        body = await resp.json()
        assert resp.status == 200 and body["data"] == {"status": "ok", "database": True, "redis": True}


async def test_health_and_the_overview_say_which_engine_leads_since_when(anon: Api, admin: Api, deps) -> None:
    from engine.infra.clock import FakeClock
    from tests.engine_support import new_engine, running

    engine, _ = new_engine(deps.settings, deps.pool, FakeClock(deps.clock.now()), deps.box)
    async with running(engine):
        body = await (await anon.client.get("/health")).json()
        leader = body["data"]["leader"]
        assert leader["engine"] == engine.name and leader["epoch"] == 1 and leader["live"] is True
        assert datetime.fromisoformat(leader["since"].replace("Z", "+00:00")) == engine.lease.since
        overview = await admin.ok("GET", "/monitor/overview")
        assert overview["leader"]["engine"] == engine.name
    body = await (await anon.client.get("/health")).json()
    assert body["data"]["leader"]["live"] is False  # stopped: the lease was handed back


async def test_envelope_shape_and_unknown_route(admin: Api) -> None:
    resp = await admin.client.get("/api/v1/me", headers={"Authorization": f"Bearer {admin.token}"})
    body = await resp.json()
    assert set(body) == {"success", "data", "message", "timestamp", "requestId"}
    assert resp.headers["X-Request-Id"] == body["requestId"]
    err = await admin.err("GET", "/no-such-route", 404, "NOT_FOUND")
    assert set(err) == {"code", "message", "details"}
    await admin.err("DELETE", "/me", 405, "METHOD_NOT_ALLOWED")


async def test_idempotency_key_replays_the_first_answer(admin: Api, deps) -> None:
    payload = {"username": "idem1", "email": "idem1@example.com", "password": "password-123"}
    headers = {"Idempotency-Key": "create-idem1"}
    first = await admin.ok("POST", "/users", json=payload, headers=headers)
    status, body = await admin.call("POST", "/users", json=payload, headers=headers)
    assert status == 201 and body["data"]["id"] == first["id"]
    assert await deps.pool.fetchval("SELECT count(*) FROM users WHERE username = 'idem1'") == 1
    # The same key with another body is a client bug, not a replay.
    await admin.err("POST", "/users", 422, "IDEMPOTENCY_KEY_REUSED", field="Idempotency-Key",
                    json={**payload, "username": "idem2"}, headers=headers)
    # Concurrent retries: one acts, the others replay or are told it is in progress.
    payload3 = {"username": "idem3", "email": "idem3@example.com", "password": "password-123"}
    results = await asyncio.gather(*[admin.call("POST", "/users", json=payload3, headers={"Idempotency-Key": "k3"})
                                     for _ in range(5)])
    assert all(s in (201, 409) for s, _ in results)
    assert await deps.pool.fetchval("SELECT count(*) FROM users WHERE username = 'idem3'") == 1


async def test_oversized_body_is_413(admin: Api, deps) -> None:
    from engine.infra.config import Settings

    big = b'{"username": "' + b"x" * (deps.settings.max_body_bytes + 10) + b'"}'
    await admin.err("POST", "/users", 413, "PAYLOAD_TOO_LARGE", field="body", data=big,
                    headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("layer,forbidden", [
    ("engine", ("api", "tui", "edm")),
    ("api", ("tui", "edm")),
    ("tui", ("engine", "asyncpg", "edm")),
])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = []
    for path in (ROOT / layer).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert not offenders, offenders
