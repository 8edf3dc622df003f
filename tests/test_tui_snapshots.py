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


def settled(app: Dashboard, *keys: str, until=None):
    """Run before the screenshot: wait for the data, the events and the mappings, press `keys`, then
    wait for `until(app)` (a drill-down's fetched part)."""
    async def run(pilot) -> None:
        await wait_for(pilot, lambda: app.snapshot is not None and len(app.events.events) == 6
                       and app.active_owners() <= app.campaigns.mappings.keys())
        await pilot.pause(0.4)
        for key in keys:
            await pilot.press(key)
        if until is not None:
            await wait_for(pilot, lambda: until(app))
        await pilot.pause(0.4)
    return run


def fetched(app: Dashboard) -> bool:
    return not str(app.screen.query_one("#detail-fetched").content).startswith("loading")


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


def test_campaigns_200x40_names_and_eta_in_words(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(200, 40), run_before=settled(app, "2"))


def test_campaign_detail_120x40(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(app, "2", "enter", until=fetched))


def test_service_detail_120x40(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(app, "1", "enter", until=fetched))


def test_user_detail_100x30(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(100, 30), run_before=settled(app, "3", "enter", until=fetched))


def test_alerts_120x40(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(app, "a", until=fetched))


def test_help_overlay_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "2", "question_mark"))


def test_sorted_and_filtered_services_100x30(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(100, 30),
                        run_before=settled(app, "s", "s", "slash", "a", "escape", "space"))


def test_quota_form_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "3", "plus", "5", "0"))


def test_unfreeze_marked_confirmation_80x24(snap_compare, server: ThreadServer) -> None:
    app = dashboard(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(app, "space", "down", "down", "space", "U"))


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
