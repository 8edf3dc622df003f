"""The Textual dashboard app: composition, key bindings, navigation and the live feeds."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from collections import defaultdict
from typing import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from tui.actions import Actions
from tui.navigation import Navigation
from tui.client import ApiClient, ApiError, Unreachable
from tui.live import ApiDown, AuthLost, EventArrived, EventFeed, Poller, SnapshotArrived
from tui.models import Me, Overview
from tui.screens.details import ServiceDetail
from tui.screens.login import LoginScreen
from tui.table_view import ViewState
from tui.throughput import minute_of
from tui.widgets.campaigns import CampaignsPanel
from tui.widgets.events import EventsPanel
from tui.widgets.fleet import FleetChart
from tui.widgets.services import ServicesPanel
from tui.widgets.status import StatusBar
from tui.widgets.users import UsersPanel

# Events that change the overview enough to refresh it at once rather than on the next tick.
QUIET_KINDS = ("campaign.progress", "service.quota_used", "service.interval_started", "service.interval_ended")
MAPPINGS_EVERY = 30.0  # seconds between reads of the users' service mappings (for the quota-aware ETA)
TALL = 32  # from this many rows the fleet chart gets three lines instead of one

class PanelTabs(TabbedContent):
    """Tabs that change only when the operator asks (keys, clicks).

    Textual's TabbedContent also follows focus into a pane; a focus queued for the previous
    tab would then switch back from the tab the operator just chose.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.stop()
        event.prevent_default()  # the base class's handler would switch tabs


class Dashboard(Actions, Navigation):
    """Live view of services, campaigns, users and events, with the operator's actions."""

    CSS_PATH = "app.tcss"
    TITLE = "EDM dashboard"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        # Textual's default for ctrl+c only says how to quit; the README promises that it quits.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("tab", "cycle(1)", "Next panel", show=False, priority=True),
        Binding("shift+tab", "cycle(-1)", "Previous panel", show=False, priority=True),
        Binding("1", "tab('services')", "Services", show=False),
        Binding("2", "tab('campaigns')", "Campaigns", show=False),
        Binding("3", "tab('users')", "Users", show=False),
        Binding("4", "tab('events')", "Events", show=False),
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "leave_filter", "Back to the table", show=False),
        Binding("p", "campaign('pause')", "Pause"),
        Binding("r", "campaign('resume')", "Resume"),
        Binding("c", "campaign('cancel')", "Cancel"),
        Binding("u", "service('unfreeze')", "Unfreeze"),
        Binding("e", "toggle_service", "On/off"),
        Binding("z", "service('reset-now')", "Reset quota", show=False),
        Binding("equals_sign", "remaining", "Set left today", show=False),
        Binding("space", "mark", "Mark for bulk", show=False),
        Binding("U", "unfreeze_marked", "Unfreeze marked/all frozen", show=False),
        Binding("P", "pause_user", "Pause all of user"),
        Binding("plus", "quota", "Quota ±"),
        Binding("m", "map_services", "Map services"),
        Binding("v", "chatty", "Progress events on/off"),
        Binding("a", "alerts", "Alerts", show=False),
        Binding("l", "limits", "Sending limits", show=False),
    ]

    def __init__(self, client: ApiClient, *, username: str = "", password: str = "",
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.client = client
        self.username, self.password = username, password
        self.clock = clock
        self.me: Me | None = None
        self.snapshot: Overview | None = None
        self.received_at = 0.0
        self.down_reason = ""  # why the overview failed last; notified once per distinct reason
        self.refresh_times: list[float] = []
        self.poller = Poller(client, self.post_message, interval)
        self.feed = EventFeed(client, self.post_message, self._stream_state)
        # The operator's choices (tab, sorts, filters) live here, so they outlive reconnects and logins.
        self.view = ViewState()
        # Campaign rates by minute seen, for the campaign detail's chart.
        self.rates: dict[str, dict[int, int]] = defaultdict(dict)
        # Built here, not queried: a modal screen on top must not hide them from the feeds.
        self.services = ServicesPanel(self.view.of("services"))
        self.campaigns = CampaignsPanel(self.view.of("campaigns"))
        self.users = UsersPanel(self.view.of("users"))
        self.events = EventsPanel(self.view.of("events"))
        self.fleet = FleetChart()
        self.stream = "connecting"
        self.users_hidden = False
        self.mappings_wake = asyncio.Event()
        self.events_state = Static("events: connecting…", id="events-state")

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(self.client.base_url)
        with PanelTabs(id="tabs", initial="services"):
            with TabPane("1 Services", id="services"):
                yield self.fleet
                yield self.services
            with TabPane("2 Campaigns", id="campaigns"):
                yield self.campaigns
            with TabPane("3 Users", id="users"):
                yield self.users
            with TabPane("4 Events", id="events"):
                yield self.events
                yield self.events_state
        yield Footer()

    @property
    def status(self) -> StatusBar:
        return self.main.query_one(StatusBar)

    def elapsed(self) -> float:
        return self.clock() - self.received_at

    def on_mount(self) -> None:
        # Countdowns advance between snapshots; twice a second is smooth enough and halves redraws.
        self.set_interval(0.5, self._tick)
        self.set_class(self.size.height >= TALL, "-tall")
        if self.client.token:
            self.resume_session()
        else:
            self.ask_login()

    async def on_unmount(self) -> None:
        await self.client.close()

    # --- session --------------------------------------------------------------------------

    def ask_login(self, error: str = "") -> None:
        self.workers.cancel_group(self, "feeds")
        if isinstance(self.screen, LoginScreen):
            return
        self.status.set(link="login")
        self.push_screen(LoginScreen(self.client, self.username, error, self.password, auto=not error),
                         self.start)

    @work(exclusive=True, group="session")
    async def resume_session(self) -> None:
        while True:
            try:
                me = await self.client.me()
            except ApiError as exc:
                self.ask_login(f"{exc.code}: {exc.message}")
                return
            except Unreachable:
                self.status.set(link="reconnecting")
                await asyncio.sleep(1.0)
                continue
            self.start(me)
            return

    def start(self, me: Me | None) -> None:
        """Logged in: show what this account may see, put back the operator's view, start the feeds."""
        if me is None:
            return
        self.me = me
        self.status.set(me=me, link="connecting")
        # Only on a change: showing or hiding a tab re-announces the active one, and that late
        # announcement would undo a tab the operator picked in the meantime.
        if me.is_admin and self.users_hidden:
            self.tabs.show_tab("users")
        elif not me.is_admin and not self.users_hidden:
            self.tabs.hide_tab("users")
        self.users_hidden = not me.is_admin
        self.campaigns.show_owner = me.is_admin
        self.run_feed(self.poller.run)
        self.run_feed(self.feed.run)
        self.run_feed(self.mapping_loop)
        self.action_tab(self.view.tab if self.view.tab in self.visible_tabs() else "services")

    def run_feed(self, loop: Callable[[], object]) -> None:
        self.run_worker(loop, group="feeds", exclusive=False)  # type: ignore[arg-type]

    # --- live data ------------------------------------------------------------------------

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        self.down_reason = ""
        self.refresh_times = (self.refresh_times + [message.took])[-300:]
        self.apply(message.snapshot)

    def apply(self, snapshot: Overview) -> None:
        """Render every panel from one snapshot (panels are pure functions of it)."""
        if not self.services.is_attached or not self.is_running:
            return  # shutting down
        try:
            self._apply(snapshot)
        except NoMatches:
            return  # a panel's children are mounting or already gone: the next snapshot redraws

    def _apply(self, snapshot: Overview) -> None:
        self.snapshot, self.received_at = snapshot, self.clock()
        minute = minute_of(snapshot)
        if minute is not None:
            for c in snapshot.campaigns:
                if c.status == "running" or c.id in self.rates:
                    self.rates[c.id][minute] = round(c.rate_per_minute)
        if not self.active_owners() <= self.campaigns.mappings.keys():
            self.mappings_wake.set()
        self.fleet.show(snapshot)
        self.services.show(snapshot, 0.0)
        self.campaigns.show(snapshot)
        if self.is_admin:
            self.users.show(snapshot)
        self.events.set_tz(snapshot.business_tz)
        self.events.set_users({u.id: u.username for u in snapshot.users}
                              | {c.owner_id: c.owner for c in snapshot.campaigns if c.owner})
        self.status.set(link="live", snapshot=snapshot)
        self.sub_title = "live"
        if hasattr(self.screen, "redraw") and self.screen is not self.main:
            self.screen.redraw()

    def rates_of(self, campaign_id: str) -> list[int]:
        seen = self.rates.get(campaign_id, {})
        return [seen[m] for m in sorted(seen)][-60:]

    def users_of(self, service_id: str) -> list[str]:
        """Usernames known to be mapped to a service (from the mappings read for the ETA)."""
        names = {u.id: u.username for u in self.snapshot.users} if self.snapshot else {}
        return sorted(names.get(uid, uid[:8]) for uid, ids in self.campaigns.mappings.items() if service_id in ids)

    async def mapping_loop(self) -> None:
        """Reads the service mappings of the users with campaigns, for the quota-aware ETA.

        Again every MAPPINGS_EVERY seconds, and at once when a snapshot shows an owner not read yet.
        """
        while True:
            self.mappings_wake.clear()
            await self.read_mappings()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.mappings_wake.wait(), MAPPINGS_EVERY)

    def active_owners(self) -> set[str]:
        if self.snapshot is None or self.me is None:
            return set()
        owners = {c.owner_id for c in self.snapshot.campaigns if c.status in ("running", "paused")}
        return owners if self.me.is_admin else ({self.me.id} if owners else set())

    async def read_mappings(self) -> None:
        found = dict(self.campaigns.mappings)
        for owner in self.active_owners():
            try:
                got = await self.client.user_services(owner if self.is_admin else None)
            except (ApiError, Unreachable):
                continue
            found[owner] = frozenset(got.service_ids)
        if found != self.campaigns.mappings and self.is_running:
            self.campaigns.mappings = found
            self.campaigns.redraw()

    @work(group="feeds")
    async def refresh_mappings(self) -> None:
        await self.read_mappings()

    def on_api_down(self, message: ApiDown) -> None:
        if not self.is_running or not self.screen_stack:
            return
        self.status.set(link="reconnecting")
        self.sub_title = "reconnecting…"
        if message.reason != self.down_reason:
            self.down_reason = message.reason
            self.notify(message.reason, title="reconnecting…", severity="warning")

    def on_auth_lost(self, message: AuthLost) -> None:
        self.client.token = None
        self.ask_login(f"session ended: {message.reason}")

    def on_event_arrived(self, message: EventArrived) -> None:
        event = message.event
        if not self.events.is_attached:
            return
        self.events.add(event)
        if event.kind == "alert":
            self.notify(event.message, title="alert", severity="warning")
        if not event.kind.startswith(QUIET_KINDS):
            self.poller.poke()

    def _stream_state(self, state: str) -> None:
        self.stream = state
        text = {"live": "events: live", "down": "events: reconnecting…", "auth": "events: session ended",
                "unavailable": "events: this API has no event stream"}.get(state, state)
        chatty = "shown (v hides them)" if self.events.chatty else "hidden (v shows them)"
        self.events_state.update(f"{text} · progress, quota-used and interval events {chatty}")

    def _tick(self) -> None:
        if self.snapshot is None or not self.services.is_attached or not self.is_running:
            return
        try:
            self.services.tick(self.elapsed())
        except NoMatches:
            return  # the panel's table is mounting or already torn down
        if isinstance(self.screen, ServiceDetail):
            self.screen.redraw()

    def on_resize(self) -> None:
        self.set_class(self.size.height >= TALL, "-tall")
        if self.snapshot is not None:
            self.apply(self.snapshot)
