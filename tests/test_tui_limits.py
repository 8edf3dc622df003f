"""The dashboard's sending limits screen (`l`): domain groups with their minute and day usage
against their limits, and the engine-wide per-minute cap; Pilot checks and an SVG snapshot."""

from __future__ import annotations

import io
from typing import Any, Iterator

import orjson
import pytest
from aiohttp import web
from rich.console import Console
from textual.widgets import Static

from tests.tui_support import ADMIN_TOKEN, USER_TOKEN, FixtureState, ThreadServer, envelope, fixture_app, wait_for
from tui.app import Dashboard
from tui.client import ApiClient
from tui.screens.limits import LimitsScreen

GROUPS = [
    {"id": "00000000-0000-0000-0000-0000000000d1", "name": "netease", "pattern": "163.com|126.com",
     "domains": ["163.com", "126.com"], "per_minute": 30, "per_day": 5000, "per_service": False,
     "used_last_minute": 12, "used_today": 1830, "services": [], "at_limit": False,
     "created_at": "2026-11-23T01:00:00Z", "updated_at": "2026-11-23T01:00:00Z"},
    {"id": "00000000-0000-0000-0000-0000000000d2", "name": "qq", "pattern": "qq.com|foxmail.com",
     "domains": ["qq.com", "foxmail.com"], "per_minute": 4, "per_day": None, "per_service": True,
     "used_last_minute": 4, "used_today": 210,
     "services": [{"service_id": "00000000-0000-0000-0000-0000000000a1", "last_minute": 4, "today": 210}],
     "at_limit": True, "created_at": "2026-11-23T01:00:00Z", "updated_at": "2026-11-23T01:00:00Z"},
]
CAP = {"per_minute": 600, "source": "admin", "used_last_minute": 170}


def limits_app(state: FixtureState, reads: list[str]) -> web.Application:
    app = fixture_app(state)

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in (ADMIN_TOKEN, USER_TOKEN):
            return web.Response(status=401)
        reads.append(request.path_qs.removeprefix("/api/v1"))
        data: Any = CAP if request.path.endswith("send-rate-limit") else \
            {"items": GROUPS, "total": len(GROUPS), "limit": 100, "offset": 0}
        return web.Response(body=orjson.dumps(envelope(data)), content_type="application/json")

    app.router.add_get("/api/v1/domain-groups", handle)
    app.router.add_get("/api/v1/engine/send-rate-limit", handle)
    return app


@pytest.fixture
def reads() -> list[str]:
    return []


@pytest.fixture
def server(reads: list[str]) -> Iterator[ThreadServer]:
    srv = ThreadServer(lambda: limits_app(FixtureState(), reads)).start()
    yield srv
    srv.close()


def dashboard(server: ThreadServer, token: str = ADMIN_TOKEN) -> Dashboard:
    return Dashboard(ApiClient(server.url, token), clock=lambda: 0.0, interval=3600)


def text_of(app: Dashboard, selector: str) -> str:
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


async def open_limits(pilot, app: Dashboard) -> str:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: app.snapshot is not None)
    await pilot.press("l")
    assert isinstance(app.screen, LimitsScreen)
    await wait_for(pilot, lambda: {"groups", "cap"} <= app.screen.fetched.keys())  # type: ignore[attr-defined]
    return text_of(app, "#detail-fetched")


@pytest.mark.parametrize("token", [ADMIN_TOKEN, USER_TOKEN])
async def test_limits_screen_shows_usage_against_limits(server: ThreadServer, reads: list[str], token: str) -> None:
    app = dashboard(server, token)
    async with app.run_test(size=(140, 40)) as pilot:
        body = await open_limits(pilot, app)
        assert {"/domain-groups?limit=100", "/engine/send-rate-limit"} <= set(reads)
        assert "engine-wide cap: 170/600" in body and "set by an admin" in body
        netease = next(line for line in body.splitlines() if line.lstrip().startswith("netease"))
        assert "12/30" in netease and "1830/5000" in netease and "all services" in netease and "open" in netease
        qq = next(line for line in body.splitlines() if line.lstrip().startswith("qq "))
        assert "4/4" in qq and "210 (no limit)" in qq and "per service" in qq and "waiting" in qq
        assert "2 domain groups" in text_of(app, "#detail-title")
        await pilot.press("escape")
        assert not isinstance(app.screen, LimitsScreen)


def test_limits_screen_snapshot(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)

    async def run(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_limits(pilot, app)
        await pilot.pause(0.4)
    assert snap_compare(app, terminal_size=(120, 30), run_before=run)
