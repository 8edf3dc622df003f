"""Dashboard v2 driven by the Pilot: quitting, focus in forms, help, palette, drill-down, sort,
filter, bulk actions, admin forms, login retries and what survives a reconnect."""

from __future__ import annotations

from typing import AsyncIterator

import io

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.widgets import Input, SelectionList, Sparkline, Static
from textual.widgets._toast import Toast

from tests.tui_support import (ADMIN_TOKEN, ALICE, FixtureState, ThreadServer, column_texts, fixture_app, notes,
                               svc_id, wait_for)
from tui.app import Dashboard
from tui.client import ApiClient
from tui.live import AuthLost
from tui.screens.confirm import ConfirmScreen
from tui.screens.details import CampaignDetail, ServiceDetail, UserDetail
from tui.screens.forms import MappingForm, QuotaForm, RemainingForm
from tui.screens.help import HelpScreen
from tui.screens.login import LoginScreen
from tui.widgets.keyed_table import KeyedTable

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
    return Dashboard(ApiClient(server.url, token), clock=lambda: 0.0, **kw)


def table(app: Dashboard, name: str) -> KeyedTable:
    return app.query_one(f"#{name}-table", KeyedTable)


def text_of(app: Dashboard, selector: str) -> str:
    """The plain text a Static shows, whatever renderable it holds (Text, Group, table)."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


async def started(pilot, app: Dashboard) -> None:
    await wait_for(pilot, lambda: app.snapshot is not None and table(app, "services").row_count > 0)


async def select(pilot, app: Dashboard, panel: str, key: str) -> None:
    await pilot.press({"services": "1", "campaigns": "2", "users": "3"}[panel])
    t = table(app, panel)
    t.move_cursor(row=t._keys.index(key))
    await pilot.pause()


async def save(pilot) -> None:
    # Let the form lay out first: a message that just appeared moves the button down a line.
    await pilot.pause()
    await pilot.click("#form-save")


# --- defects ----------------------------------------------------------------------------------

async def test_ctrl_c_quits_like_q(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        assert not app.is_running and app.return_code == 0
        assert not any("to quit" in n for n in notes(app))


async def test_tab_moves_focus_in_the_login_form(server: ThreadServer) -> None:
    app = dashboard(server, token=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await pilot.press(*"alice", "tab", *"password-123")
        assert app.screen.query_one("#login-username", Input).value == "alice"
        assert app.screen.query_one("#login-password", Input).value == "password-123"
        await pilot.press("shift+tab")
        assert app.focused.id == "login-username"
        await pilot.press("tab", "enter")
        await started(pilot, app)
        assert app.me.username == "alice"


async def test_tab_moves_focus_in_a_confirmation(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "campaigns", CAMP.format(1))
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen) and app.focused.id == "confirm-no"
        await pilot.press("shift+tab")
        assert app.focused.id == "confirm-yes" and app.query_one("#tabs").active == "campaigns"
        await pilot.press("enter")
        await wait_for(pilot, lambda: ("POST", f"/campaigns/{CAMP.format(1)}/cancel") in state.calls)


async def test_columns_follow_the_width(server: ThreadServer) -> None:
    for width, name in ((100, "Black Friday …"), (200, "Black Friday 10k")):
        app = dashboard(server)
        async with app.run_test(size=(width, 30)) as pilot:
            await started(pilot, app)
            await pilot.press("2")
            campaigns = table(app, "campaigns")
            layout = {c.key: c.width for c in campaigns._layout}
            assert {"rate", "eta"} <= layout.keys() and sum(w + 2 for w in layout.values()) + 1 <= width
            assert column_texts(campaigns, "name")[0] == name
            if width == 200:
                assert layout["name"] > 20 and column_texts(campaigns, "eta")[5] == "waits for reset at 08:00"


async def test_a_cancelled_campaign_shows_what_was_attempted(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("2")
        progress = table(app, "campaigns").get_cell(CAMP.format(7), "progress")
        assert progress.plain.endswith(" 40%") and "░" in progress.plain
        assert column_texts(table(app, "campaigns"), "status")[6] == "cancelled"


async def test_login_retries_while_the_api_is_down_and_keeps_the_password(server: ThreadServer) -> None:
    server.stop()
    app = dashboard(server, token=None, username="root", password="admin-password")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen) and app.screen.attempts >= 1)
        assert "retrying" in text_of(app, "#login-error")
        assert app.screen.query_one("#login-password", Input).value == "admin-password"
        server.resume()
        await started(pilot, app)
        assert app.me.username == "root"


async def test_toasts_leave_the_detail_line_readable(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await started(pilot, app)
        app.notify("a long message " * 4, title="something happened")
        await pilot.pause(0.3)
        detail = app.query_one("#services-detail").region
        toasts = list(app.screen.query(Toast))
        assert toasts and all(not t.region.overlaps(detail) for t in toasts)


# --- discoverability --------------------------------------------------------------------------

async def test_help_lists_the_keys_of_the_current_screen(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("2", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        texts = [t for _, t, _ in app.screen.rows]
        assert {"Pause", "Resume", "Cancel", "Sort", "Filter", "Quit", "Open the detail screen"} <= set(texts)
        assert "Unfreeze" not in texts
        await pilot.press("escape", "1", "question_mark")
        texts = [t for _, t, _ in app.screen.rows]
        assert {"Unfreeze", "Mark for bulk", "Set left today"} <= set(texts) and "Pause" not in texts
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_offers_screens_and_actions(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"show campaigns")
        await pilot.pause(0.5)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.query_one("#tabs").active == "campaigns")
        await pilot.press("ctrl+p", *"pause")
        await pilot.pause(0.5)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: ("POST", f"/campaigns/{CAMP.format(1)}/pause") in state.calls)


# --- drill-down -------------------------------------------------------------------------------

async def test_enter_opens_campaign_detail_and_esc_goes_back(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "campaigns", CAMP.format(1))
        await pilot.press("enter")
        assert isinstance(app.screen, CampaignDetail)
        await wait_for(pilot, lambda: "550 mailbox unavailable" in text_of(app, "#detail-fetched"))
        body = text_of(app, "#detail-fetched")
        assert "Pause history" in body and "paused by root" in body and "gone@example.net" in body
        live = text_of(app, "#detail-live")
        assert "4500 sent" in live and "rate 380/m" in live and "Rate over time" in live
        await pilot.press("p")  # the campaign's actions work here too
        await wait_for(pilot, lambda: ("POST", f"/campaigns/{CAMP.format(1)}/pause") in state.calls)
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0] and app.query_one("#tabs").active == "campaigns"


async def test_service_detail_shows_chart_configuration_log_and_users(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 50)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "services", svc_id(1))
        await pilot.press("enter")
        assert isinstance(app.screen, ServiceDetail)
        await wait_for(pilot, lambda: "api_key=63b8…b868" in text_of(app, "#detail-fetched"))
        await wait_for(pilot, lambda: "alice" in text_of(app, "#detail-fetched"))
        body = text_of(app, "#detail-fetched")
        assert "5 failures in a row" in body and "mail.example.com" in body
        live = text_of(app, "#detail-live")
        assert "quota 812 used of 20k" in live and "next reset 11-24 08:00" in live
        assert "  30 ┤" in live and "now" in live and " 10 12 15 18 20 22 25 28 30 29" in live
        await pilot.press("backspace")
        assert app.screen is app.screen_stack[0]


async def test_user_detail_shows_ledger_services_and_campaigns(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "users", ALICE["id"])
        await pilot.press("enter")
        assert isinstance(app.screen, UserDetail)
        await wait_for(pilot, lambda: "+5000" in text_of(app, "#detail-fetched"))
        assert "fast-lane, slow-lane" in text_of(app, "#detail-fetched")
        live = text_of(app, "#detail-live")
        assert "Campaigns (3)" in live and "Black Friday 10k" in live and "quota left 4200" in live


# --- sort, filter and what survives a reconnect -----------------------------------------------

async def test_s_cycles_the_sort_and_a_header_click_sorts(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("2", "s")
        campaigns = table(app, "campaigns")
        names = column_texts(campaigns, "name")
        assert names == sorted(names, key=str.lower) and campaigns.columns["name"].label.plain == "Campaign ▲"
        await pilot.press("s")
        assert column_texts(campaigns, "name") == sorted(names, key=str.lower, reverse=True)
        # Click the Pending header: x is past the columns before it (each padded by one cell a side).
        x = sum(c.width + 2 for c in campaigns._layout[:6]) + 2
        await pilot.click("#campaigns-table", offset=(x, 0))
        await pilot.pause()
        assert app.view.of("campaigns").sort == "pending"
        assert [int(p) for p in column_texts(campaigns, "pending")] == [0, 0, 0, 200, 500, 900, 5488]


async def test_slash_filters_the_current_tab(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("slash")
        assert app.focused.id == "services-filter"
        await pilot.press(*"lane")
        assert column_texts(table(app, "services"), "name") == ["fast-lane", "slow-lane"]
        await pilot.press("escape")
        assert isinstance(app.focused, KeyedTable) and app.query_one("#services-filter").display
        await pilot.press("3", "slash", *"car")
        assert column_texts(table(app, "users"), "username") == ["carol"]
        # Events: by a user's name (the event carries only the id; the snapshot knows the name).
        await pilot.press("escape", "4", "slash", *"bob")
        await wait_for(pilot, lambda: table(app, "events").row_count == 1)
        assert column_texts(table(app, "events"), "kind") == ["campaign.paused"]


async def test_tab_sort_and_filter_survive_a_reconnect_and_a_new_login(server: ThreadServer) -> None:
    app = dashboard(server, interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("2", "s", "slash", *"alice", "escape")
        expected = ["Black Friday 10k", "Broken template", "Scheduled promo"]
        assert column_texts(table(app, "campaigns"), "name") == expected
        server.stop()
        await wait_for(pilot, lambda: "reconnecting" in app.status.render().plain)
        server.resume()
        await wait_for(pilot, lambda: "● live" in app.status.render().plain)
        app.post_message(AuthLost("token expired"))
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await pilot.press(*"root", "tab", *"admin-password", "enter")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0] and app.me is not None)
        await pilot.pause(0.3)
        assert app.query_one("#tabs").active == "campaigns"
        assert column_texts(table(app, "campaigns"), "name") == expected
        assert app.query_one("#campaigns-filter", Input).value == "alice"


# --- bulk actions and admin forms -------------------------------------------------------------

async def test_pause_all_campaigns_of_a_user_with_one_confirmation(server: ThreadServer, state: FixtureState) -> None:
    state.overview["campaigns"][2]["status"] = "running"  # alice: two running campaigns
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "users", ALICE["id"])
        await pilot.press("P")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Pause all 2 running campaign(s) of alice?" in text_of(app, "#confirm-question")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(state.calls) == 2)
        assert state.calls == [("POST", f"/campaigns/{CAMP.format(1)}/pause"),
                               ("POST", f"/campaigns/{CAMP.format(3)}/pause")]
        await wait_for(pilot, lambda: any(n.startswith("Paused 2:") for n in notes(app)))


async def test_unfreeze_several_marked_services_at_once(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "services", svc_id(2))
        await pilot.press("space", "down", "space")
        assert column_texts(table(app, "services"), "name")[1:3] == ["● slow-lane", "● flaky"]
        await pilot.press("U")
        assert "Unfreeze 2 service(s): slow-lane, flaky?" in text_of(app, "#confirm-question")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(state.calls) == 2)
        assert state.calls == [("POST", f"/services/{svc_id(2)}/unfreeze"), ("POST", f"/services/{svc_id(3)}/unfreeze")]


async def test_quota_form_shows_the_api_validation_message(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "users", ALICE["id"])
        await pilot.press("plus")
        assert isinstance(app.screen, QuotaForm)
        await pilot.press(*"lots", "enter", "enter")
        assert "delta must be a whole number" in text_of(app, "#form-error") and state.bodies == []
        app.screen.query_one("#form-delta", Input).value = "5000"
        await pilot.press("enter")  # Enter in the last field saves
        await wait_for(pilot, lambda: "VALIDATION_ERROR: reason" in text_of(app, "#form-error"))
        assert isinstance(app.screen, QuotaForm)  # stays open until the API accepts
        app.screen.query_one("#form-reason", Input).value = "campaign season"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuotaForm))
        assert state.bodies[-1] == ("POST", f"/users/{ALICE['id']}/quota", {"delta": 5000, "reason": "campaign season"})
        assert "Quota of alice +5000" in notes(app)


async def test_mapping_form_replaces_the_users_services(server: ThreadServer, state: FixtureState) -> None:
    app = dashboard(server)
    async with app.run_test(size=(80, 30)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "users", ALICE["id"])
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MappingForm))
        chosen = app.screen.query_one(SelectionList)
        assert sorted(chosen.selected) == [svc_id(1), svc_id(2)]
        chosen.select(svc_id(5))
        await save(pilot)
        await wait_for(pilot, lambda: not isinstance(app.screen, MappingForm))
        method, path, body = state.bodies[-1]
        assert (method, path) == ("PUT", f"/users/{ALICE['id']}/services")
        assert sorted(body["service_ids"]) == [svc_id(1), svc_id(2), svc_id(5)]


async def test_remaining_form_sets_a_services_remaining_today(server: ThreadServer, state: FixtureState) -> None:
    state.refuse[f"/services/{svc_id(2)}/remaining"] = (400, "VALIDATION_ERROR", "remaining: Expected `int` <= 10000000")
    app = dashboard(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await select(pilot, app, "services", svc_id(1))
        await pilot.press("equals_sign")
        assert isinstance(app.screen, RemainingForm)
        assert app.screen.query_one("#form-remaining", Input).value == "19188"
        app.screen.query_one("#form-remaining", Input).value = "100"
        app.screen.query_one("#form-reason", Input).value = "provider asked us to slow down"
        await save(pilot)
        await wait_for(pilot, lambda: not isinstance(app.screen, RemainingForm))
        assert state.bodies[-1] == ("PUT", f"/services/{svc_id(1)}/remaining",
                                    {"remaining": 100, "reason": "provider asked us to slow down"})
        await select(pilot, app, "services", svc_id(2))
        await pilot.press("equals_sign")
        app.screen.query_one("#form-reason", Input).value = "x"
        await save(pilot)
        await wait_for(pilot, lambda: "remaining: Expected `int` <= 10000000" in text_of(app, "#form-error"))
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


async def test_fleet_throughput_plot(server: ThreadServer) -> None:
    app = dashboard(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        assert text_of(app, "#fleet-label").startswith("fleet 35/min · peak 168 · 10m")
        spark = app.query_one("#fleet-spark", Sparkline)
        assert list(spark.data)[-1] == 35.0 and max(spark.data) == 168.0 and len(spark.data) == 10
        assert app.query_one("#fleet").size.height == 3  # a tall terminal gets the taller plot
