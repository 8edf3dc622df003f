"""CORS for configured origins only (EDM_CORS_ORIGINS; none by default)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from api.app import init_app
from api.deps import Deps
from engine.infra.config import Settings

PREFLIGHT = {"Origin": "https://ops.example.com", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


async def test_no_cors_by_default(client) -> None:
    resp = await client.get("/api/v1/health", headers={"Origin": "https://ops.example.com"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.options("/api/v1/auth/login", headers=PREFLIGHT)
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_configured_origins_get_cors(deps: Deps) -> None:
    deps.settings = Settings.from_env({}, data_dir=deps.settings.data_dir, jwt_secret=deps.settings.jwt_secret,
                                      cors_origins="https://ops.example.com, https://other.example.com")
    async with TestClient(TestServer(init_app(deps))) as client:
        resp = await client.options("/api/v1/auth/login", headers=PREFLIGHT)
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://ops.example.com"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
        assert "Origin" in resp.headers["Vary"]
        resp = await client.get("/api/v1/health", headers={"Origin": "https://other.example.com"})
        assert resp.headers["Access-Control-Allow-Origin"] == "https://other.example.com"
        assert "X-Request-Id" in resp.headers["Access-Control-Expose-Headers"]
        resp = await client.get("/api/v1/health", headers={"Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in resp.headers
        resp = await client.options("/api/v1/auth/login", headers={**PREFLIGHT, "Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in resp.headers
