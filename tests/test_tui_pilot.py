"""The dashboard driven by the Pilot against a stand-in API that speaks the live contract:
every panel, every key, errors, roles, login and reconnecting."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from tests.tui_support import (
    ADMIN_TOKEN,
    USER_TOKEN,
    FixtureState,
    ThreadServer,
    column_texts,
    fixture_app,
    notes,
    wait_for,
)
from tui.app import Dashboard
from tui.client import ApiClient
from tui.screens.confirm import ConfirmScreen
from tui.screens.login import LoginScreen
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.status import StatusBar

SVC = "00000000-0000-0000-0000-00000000005{}"
CAMP = "00000000-0000-0000-0000-00000000c0{}"


@pytest.fixture
def state() -> FixtureState:
    return FixtureState()


@pytest.fixture
def server(state: FixtureState) -> AsyncIterator[ThreadServer]:
    srv = ThreadServer(lambda: fixture_app(state)).start()
    yield srv
    srv.close()


def dashboard(server: ThreadServer, token: str | None = ADMIN_TOKEN, **kw) -> Dashboard:
    # A frozen clock: countdowns show exactly what the snapshot says.
    return Dashboard(ApiClient(server.url, token), clock=lambda: 0.0, **kw)


def table(app: Dashboard, name: str) -> KeyedTable:
    return app.query_one(f"#{name}-table", KeyedTable)


def status(app: Dashboard) -> str:
    return app.query_one(StatusBar).render().plain  # type: ignore[union-attr]


async def started(pilot, app: Dashboard) -> None:
    await wait_for(pilot, lambda: app.snapshot is not None and table(app, "services").row_count > 0)


async def select(pilot, app: Dashboard, panel: str, key: str) -> None:
    await pilot.press({"services": "1", "campaigns": "2"}[panel])
    t = table(app, panel)
    t.move_cursor(row=t._keys.index(key))
    await pilot.pause()


async def test_services_panel_shows_every_state(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        services = table(app, "services")
        assert column_texts(services, "name") == ["fast-lane", "slow-lane", "flaky", "tiny-quota", "smtp-relay",
                                                  "big-pipe"]
        assert column_texts(services, "state") == ["ready", "interval 3.2s", "FROZEN (abnormal)",
                                                   "exhausted until 08:00", "disabled", "throttled 12s"]
        used = column_texts(services, "used")
        assert used[0].strip().startswith("812/20k ") and "░" not in used[3]
        # One scale for every row (big-pipe's 120/min is the full block) and the last minute's figure.
        spm = column_texts(services, "spm")
        assert spm[0] == "▂▂▂▂▂▂▂▃▃▃     29" and spm[5].startswith("▄▅▅▆▆▇▇█") and spm[1].endswith(" 6")
        assert column_texts(services, "fail")[2] == "5"
        assert column_texts(services, "reset") == ["08:00"] * 6  # 00:00 UTC in Asia/Shanghai
        await select(pilot, app, "services", SVC.format(3))
        detail = app.query_one("#services-detail").render().plain
        assert "abnormal: 5 failures in a row: HTTP 500" in detail
        assert "13:00:00 root" in status(app) and "ready 1/6 frozen 1 exh 1" in status(app)


async def test_countdown_advances_between_snapshots(server: ThreadServer) -> None:
    now = [0.0]
    app = Dashboard(ApiClient(server.url, ADMIN_TOKEN), clock=lambda: now[0], interval=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        # Important events refresh the overview at once; let those settle before moving time.
        await wait_for(pilot, lambda: len(app.events.events) == 6)
        await pilot.pause(0.3)
        # Waited for, not slept on: the countdown ticks on its own timer, late on a busy machine.
        def state() -> str:
            return column_texts(table(app, "services"), "state")[1]
        now[0] = 1.5
        await wait_for(pilot, lambda: state() == "interval 1.7s")
        now[0] = 4.0
        await wait_for(pilot, lambda: state() == "ready")


async def test_campaigns_panel_progress_and_pause_reason(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("2")
        campaigns = table(app, "campaigns")
        assert column_texts(campaigns, "owner") == ["alice", "bob", "alice", "bob", "alice", "carol", "bob"]
        assert column_texts(campaigns, "status") == ["running", "paused svc quota", "pending at 13:01",
                                                     "completed", "failed", "running", "cancelled"]
        assert column_texts(campaigns, "progress")[0].endswith(" 45%")
        assert column_texts(campaigns, "sent")[0] == "4500"
        assert column_texts(campaigns, "pending")[0] == "5488"
        assert column_texts(campaigns, "rate")[0] == "380/m"
        # Spring sale's rate says 3 minutes, but carol's only service has 380 of its 900 left today.
        await wait_for(pilot, lambda: column_texts(campaigns, "eta")[5] == "reset 08:00")
        assert column_texts(campaigns, "eta") == ["14m", "reset 08:00", "—", "—", "—", "reset 08:00", "—"]
        await select(pilot, app, "campaigns", CAMP.format(2))
        detail = app.query_one("#campaigns-detail").render().plain
        assert "paused: SERVICE_QUOTA_EXHAUSTED — every service mapped to bob is out of quota" in detail


async def test_users_panel_for_admins(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("3")
        assert app.query_one("#tabs").active == "users"
        users = table(app, "users")
        assert column_texts(users, "username") == ["alice", "bob", "carol"]
        assert [t.strip() for t in column_texts(users, "quota")] == ["4200", "0", "150k"]
        assert column_texts(users, "share")[0].endswith(" 72%")


async def test_events_newest_first_and_filter(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("4")
        events = table(app, "events")
        # Progress, quota-used and interval events stay out of the log unless asked for (`v`).
        await wait_for(pilot, lambda: events.row_count == 3)
        assert column_texts(events, "kind") == ["campaign.paused", "service.frozen", "campaign.started"]
        await pilot.press("v")
        await wait_for(pilot, lambda: events.row_count == 6)
        assert column_texts(events, "kind")[0] == "campaign.progress"
        assert column_texts(events, "at")[0] == "12:59:06"
        await pilot.press("slash")
        assert app.query_one("#tabs").active == "events" and app.focused.id == "events-filter"
        await pilot.press(*"frozen")
        await wait_for(pilot, lambda: events.row_count == 1)
        assert column_texts(events, "message") == ["flaky frozen: 5 failures in a row: HTTP 500"]
        # Letters that are also keys (q, p, c…) type into the filter instead of acting.
        app.events.query_one("#events-filter").value = ""
        await pilot.press(*"quota")
        await wait_for(pilot, lambda: events.row_count == 2)
        assert app.is_running and column_texts(events, "kind") == ["service.quota_used", "campaign.paused"]
        await pilot.press("escape")
        assert isinstance(app.focused, KeyedTable)


async def test_tab_and_number_keys_switch_panels(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        tabs = app.query_one("#tabs")
        seen = []
        for _ in range(4):
            await pilot.press("tab")
            seen.append(tabs.active)
        assert seen == ["campaigns", "users", "events", "services"]
        await pilot.press("shift+tab")
        assert tabs.active == "events"
        await pilot.press("2")
        assert tabs.active == "campaigns" and app.focused is table(app, "campaigns")


async def test_campaign_keys_pause_resume_and_confirmed_cancel(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "campaigns", CAMP.format(1))
        await pilot.press("p")
        await wait_for(pilot, lambda: len(state.calls) == 1)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(state.calls) == 2)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # declined: nothing is sent
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen) and len(state.calls) == 2
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: len(state.calls) == 3)
        base = f"/campaigns/{CAMP.format(1)}"
        assert state.calls == [("POST", f"{base}/pause"), ("POST", f"{base}/resume"), ("POST", f"{base}/cancel")]
        await wait_for(pilot, lambda: "Cancelled Black Friday 10k" in notes(app))
        assert "Paused Black Friday 10k" in notes(app)


async def test_service_keys_unfreeze_toggle_and_reset(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "services", SVC.format(3))
        await pilot.press("u")
        await wait_for(pilot, lambda: len(state.calls) == 1)
        await pilot.press("z")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(state.calls) == 2)
        await pilot.press("e")  # flaky is enabled: disabling asks first
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(state.calls) == 3)
        await select(pilot, app, "services", SVC.format(5))
        await pilot.press("e")  # smtp-relay is disabled: enabling needs no confirmation
        await wait_for(pilot, lambda: len(state.calls) == 4)
        flaky, relay = f"/services/{SVC.format(3)}", f"/services/{SVC.format(5)}"
        assert state.calls == [("POST", f"{flaky}/unfreeze"), ("POST", f"{flaky}/reset-now"),
                               ("POST", f"{flaky}/disable"), ("POST", f"{relay}/enable")]


async def test_campaign_keys_do_nothing_on_the_services_panel(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("p", "c", "r")
        await pilot.pause(0.2)
        assert state.calls == [] and not isinstance(app.screen, ConfirmScreen)


async def test_api_errors_are_notified_with_their_code(server: ThreadServer, state: FixtureState) -> None:
    state.refuse[f"/campaigns/{CAMP.format(4)}/pause"] = (409, "INVALID_STATE", "campaign is completed")
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "campaigns", CAMP.format(4))
        await pilot.press("p")
        await wait_for(pilot, lambda: "INVALID_STATE: campaign is completed" in notes(app))


async def test_a_user_sees_own_campaigns_and_no_admin_keys(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server, USER_TOKEN)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert "alice quota 4200" in status(app)
        await pilot.press("3")  # no Users panel for users
        assert app.query_one("#tabs").active == "services"
        await pilot.press("u", "e", "z")
        await pilot.pause(0.2)
        assert state.calls == [] and not isinstance(app.screen, ConfirmScreen)
        assert app.check_action("service", ("unfreeze",)) is False
        await pilot.press("2")
        campaigns = table(app, "campaigns")
        assert column_texts(campaigns, "name") == ["Black Friday …", "Scheduled pro…", "Broken templa…"]
        assert "owner" not in [c.key for c in campaigns._layout]
        await pilot.press("p")
        await wait_for(pilot, lambda: len(state.calls) == 1)
        assert state.calls == [("POST", f"/campaigns/{CAMP.format(1)}/pause")]


async def test_login_screen_refuses_then_accepts(server: ThreadServer) -> None:
    app = dashboard(server, token=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen)
        await pilot.press(*"root", "enter", *"wrong-password", "enter")
        await wait_for(pilot, lambda: "INVALID_CREDENTIALS" in app.screen.query_one("#login-error").render().plain)
        await pilot.press(*"admin-password", "enter")
        await started(pilot, app)
        assert not isinstance(app.screen, LoginScreen) and app.me.username == "root"


async def test_username_and_password_arguments_skip_the_screen(server: ThreadServer) -> None:
    app = dashboard(server, token=None, username="alice", password="password-123")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert app.me.username == "alice" and not isinstance(app.screen, LoginScreen)


async def test_survives_the_api_restarting(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server, interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await wait_for(pilot, lambda: len(app.events.events) == 6)
        await pilot.press("4")
        server.stop()
        await wait_for(pilot, lambda: "reconnecting" in status(app))
        assert app.query_one("#services-table").row_count == 6  # the last data stays on screen
        state.events.append({"id": "1763874000000-7", "kind": "service.unfrozen", "at": "2026-11-23T05:00:01Z",
                             "message": "flaky unfrozen by root", "data": {}})
        server.resume()
        await wait_for(pilot, lambda: "● live" in status(app), timeout=10)
        # The stream resumed after the last event seen, so only the new one arrived.
        await wait_for(pilot, lambda: len(app.events.events) == 7, timeout=10)
        assert state.last_event_ids[-1] == "1763874000000-6"
        events = table(app, "events")
        await wait_for(pilot, lambda: events.row_count == 4)
        assert column_texts(events, "kind")[:2] == ["service.unfrozen", "campaign.paused"]
        assert [events.get_row_at(i)[1].plain for i in range(2)] == ["service.unfrozen", "campaign.paused"]


async def test_a_refused_token_asks_for_login(server: ThreadServer) -> None:
    app = dashboard(server, token="expired")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        assert "UNAUTHORIZED" in app.screen.query_one("#login-error").render().plain


async def test_a_service_unavailable_overview_shows_reconnecting(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server, interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        state.down = True
        await wait_for(pilot, lambda: "reconnecting" in status(app))
        state.down = False
        await wait_for(pilot, lambda: "● live" in status(app))
