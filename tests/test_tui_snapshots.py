"""SVG snapshots of the dashboard at 80×24 and 120×40 over deterministic contract-shaped data.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.tui_support import (
    ADMIN_TOKEN,
    USER_TOKEN,
    FixtureState,
    ThreadServer,
    fixture_app,
    wait_for,
)
from tui.app import Dashboard
from tui.client import ApiClient


@pytest.fixture
def server() -> Iterator[ThreadServer]:
    srv = ThreadServer(lambda: fixture_app(FixtureState())).start()
    yield srv
    srv.close()


def settled(app: Dashboard, *keys: str):
    """Run before the screenshot: wait for the data and the events, then press `keys`."""
    async def run(pilot) -> None:
        await wait_for(pilot, lambda: app.snapshot is not None and len(app.events.events) == 6)
        await pilot.pause(0.4)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.4)
    return run


def dashboard(server: ThreadServer, token: str | None = ADMIN_TOKEN) -> Dashboard:
    # Frozen clock and no periodic refresh: every run draws the same frame.
    return Dashboard(ApiClient(server.url, token), clock=lambda: 0.0, interval=3600)


def test_services_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app))


def test_services_120x40(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(app, "down", "down"))


def test_campaigns_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "2", "down"))


def test_campaigns_120x40(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(app, "2"))


def test_users_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "3"))


def test_events_120x40(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(app, "4"))


def test_cancel_confirmation_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "2", "c"))


def test_user_view_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server, USER_TOKEN)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "2"))


def test_login_80x24(snap_compare) -> None:
    # Nothing is sent before the password is entered; a fixed address keeps the frame stable.
    app = Dashboard(ApiClient("http://edm.example:8080"), clock=lambda: 0.0)
    assert snap_compare(app, terminal_size=(80, 24), press=["r", "o", "o", "t"])
