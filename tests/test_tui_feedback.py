"""The dashboard shows deliverability: a campaign's funnel, a service's reputation and warm-up day,
a user's suppression list size, the alerts screen (admins), and a send-window pause."""

from __future__ import annotations

import io
from typing import Iterator

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.widgets import Static

from tests.tui_support import (ADMIN_TOKEN, ALICE, USER_TOKEN, FixtureState, ThreadServer, cell_text, fixture_app,
                               svc_id, wait_for)
from tui.app import Dashboard
from tui.client import ApiClient
from tui.screens.alerts import AlertsScreen
from tui.screens.details import CampaignDetail, ServiceDetail, UserDetail
from tui.screens.help import HelpScreen
from tui.widgets.keyed_table import KeyedTable

CAMP1 = "00000000-0000-0000-0000-00000000c01"


@pytest.fixture
def state() -> FixtureState:
    return FixtureState()


@pytest.fixture
def server(state: FixtureState) -> Iterator[ThreadServer]:
    srv = ThreadServer(lambda: fixture_app(state)).start()
    yield srv
    srv.close()


def dashboard(server: ThreadServer, token: str = ADMIN_TOKEN) -> Dashboard:
    return Dashboard(ApiClient(server.url, token), clock=lambda: 0.0)


def text_of(app: Dashboard, selector: str) -> str:
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


def table(app: Dashboard, name: str) -> KeyedTable:
    return app.query_one(f"#{name}-table", KeyedTable)


async def started(pilot, app: Dashboard) -> None:
    await wait_for(pilot, lambda: app.snapshot is not None and table(app, "services").row_count > 0)


async def open_detail(pilot, app: Dashboard, panel: str, key: str) -> str:
    """Select `key` on `panel`, press enter, and return the fetched part's text once it arrived."""
    await pilot.press({"services": "1", "campaigns": "2", "users": "3"}[panel])
    t = table(app, panel)
    t.move_cursor(row=t._keys.index(key))
    await pilot.pause()
    await pilot.press("enter")
    parts = {"campaigns": 3, "services": 3, "users": 3}[panel]
    await wait_for(pilot, lambda: len(getattr(app.screen, "fetched", ())) == parts)
    return text_of(app, "#detail-fetched")


async def test_campaign_detail_shows_the_delivery_funnel(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        body = await open_detail(pilot, app, "campaigns", CAMP1)
        assert isinstance(app.screen, CampaignDetail)
        assert f"/campaigns/{CAMP1}/funnel" in state.reads
        lines = {line.split()[0]: line for line in body.splitlines() if line.strip()}
        assert "4500" in lines["sent"] and "100.00%" in lines["sent"]
        assert "4300" in lines["delivered"] and "95.56%" in lines["delivered"]
        assert "1720" in lines["opened"] and "38.22%" in lines["opened"]
        assert "430" in lines["clicked"] and "9.56%" in lines["clicked"]
        assert "bounced hard 120 (2.67%)" in body and "bounced soft 65 (1.44%)" in body
        assert "complained 9 (0.20%)" in body and "unsubscribed 22 (0.49%)" in body
        assert "arrives with" not in text_of(app, "#detail-live")  # the placeholder is gone


async def test_service_detail_shows_reputation_guard_and_warmup_day(server: ThreadServer,
                                                                     state: FixtureState) -> None:
    reason = "reputation guard: hard bounce rate 9.00% over 5.00% in the last 400 sends"
    state.overview = state.overview | {"services": [s | {"abnormal_reason": reason} if s["id"] == svc_id(3) else s
                                                    for s in state.overview["services"]]}
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        body = await open_detail(pilot, app, "services", svc_id(3))
        assert isinstance(app.screen, ServiceDetail)
        assert f"/services/{svc_id(3)}/reputation" in state.reads
        assert "hard bounce rate    9.00%  (36 of 400)  limit 5.00%" in body
        assert "complaint rate      0.50%  (2 of 400)  limit 0.10%" in body
        assert f"FROZEN by the reputation guard: {reason}" in body
        assert "warm-up ramp" not in body
        await pilot.press("escape")
        body = await open_detail(pilot, app, "services", svc_id(2))
        assert "not frozen by the reputation guard" in body and "FROZEN" not in body
        assert "warm-up ramp day 4: 500 allowed today" in body


async def test_user_detail_shows_the_suppression_list_size(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        body = await open_detail(pilot, app, "users", ALICE["id"])
        assert isinstance(app.screen, UserDetail)
        assert f"/suppressions?user_id={ALICE['id']}&limit=1" in state.reads
        assert "suppressed addresses 17" in body


async def test_alerts_screen_for_admins_only(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(140, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("question_mark")
        assert "Alerts" in [t for _, t, _ in app.screen.rows]  # type: ignore[attr-defined]
        await pilot.press("escape", "a")
        assert isinstance(app.screen, AlertsScreen)
        await wait_for(pilot, lambda: "alerts" in app.screen.fetched)  # type: ignore[attr-defined]
        body = text_of(app, "#detail-fetched")
        assert "/alerts?limit=50" in state.reads
        flaky = next(line for line in body.splitlines() if "frozen services" in line)
        assert "open" in flaky and "ops-wecom delivered" in flaky
        assert "service_frozen: flaky" in body and "oncall-hook failed ×3" in body
        quota = next(line for line in body.splitlines() if "quota low" in line)
        assert "cleared" in quota and "ops-wecom pending" in quota
        assert "2 of 2" in text_of(app, "#detail-title")
        await pilot.press("escape", "ctrl+p", *"alerts")
        await pilot.pause(0.5)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen))


async def test_users_do_not_see_alerts(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server, USER_TOKEN)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Alerts" not in [t for _, t, _ in app.screen.rows]
        await pilot.press("escape", "a")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, AlertsScreen)
        assert not any(r.startswith("/alerts") for r in state.reads)


async def test_a_campaign_outside_its_send_window(server: ThreadServer, state: FixtureState) -> None:
    message = "outside the send window 09:00–18:00 Asia/Shanghai; resumes at 09:00"
    state.overview = state.overview | {"campaigns": [
        c | {"status": "paused", "pause_reason": "OUTSIDE_SEND_WINDOW", "pause_message": message,
             "rate_per_minute": 0.0} if c["id"] == CAMP1 else c for c in state.overview["campaigns"]]}
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("2")
        await wait_for(pilot, lambda: table(app, "campaigns").row_count > 0)
        status = next(c for c in table(app, "campaigns").columns.values() if str(c.label).startswith("Status"))
        assert cell_text(table(app, "campaigns"), CAMP1, str(status.key.value)) == "paused window"
        await open_detail(pilot, app, "campaigns", CAMP1)
        assert f"paused: OUTSIDE_SEND_WINDOW — {message}" in text_of(app, "#detail-live")
