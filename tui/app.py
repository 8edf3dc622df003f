"""The Textual dashboard app: composition, key bindings, actions and the live feeds."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from tui.client import ApiClient, ApiError, CampaignVerb, ServiceVerb, Unreachable
from tui.live import ApiDown, AuthLost, EventArrived, EventFeed, Poller, SnapshotArrived
from tui.models import CampaignView, Me, Overview, ServiceView
from tui.panels import COMPACT_BELOW
from tui.screens.confirm import ConfirmScreen
from tui.screens.login import LoginScreen
from tui.widgets.campaigns import CampaignsPanel
from tui.widgets.events import EventsPanel
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.services import ServicesPanel
from tui.widgets.status import StatusBar
from tui.widgets.users import UsersPanel

TABS = ("services", "campaigns", "users", "events")
# Events that change the overview enough to refresh it at once rather than on the next tick.
QUIET_KINDS = ("campaign.progress", "service.quota_used", "service.interval_started", "service.interval_ended")
DONE = {"pause": "Paused", "resume": "Resumed", "cancel": "Cancelled", "unfreeze": "Unfroze",
        "reset-now": "Reset the quota of", "enable": "Enabled", "disable": "Disabled"}


class Dashboard(App[None]):
    """Live view of services, campaigns, users and events, with the operator's actions."""

    CSS_PATH = "app.tcss"
    TITLE = "EDM dashboard"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("tab", "cycle(1)", "Panel", priority=True),
        Binding("shift+tab", "cycle(-1)", "Panel", show=False, priority=True),
        Binding("1", "tab('services')", "Services", show=False),
        Binding("2", "tab('campaigns')", "Campaigns", show=False),
        Binding("3", "tab('users')", "Users", show=False),
        Binding("4", "tab('events')", "Events", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "leave_filter", "Back", show=False),
        Binding("p", "campaign('pause')", "Pause"),
        Binding("r", "campaign('resume')", "Resume"),
        Binding("c", "campaign('cancel')", "Cancel"),
        Binding("u", "service('unfreeze')", "Unfreeze"),
        Binding("e", "toggle_service", "On/off"),
        Binding("z", "service('reset-now')", "Reset quota"),
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
        # Built here, not queried: a modal screen on top must not hide them from the feeds.
        self.services = ServicesPanel()
        self.campaigns = CampaignsPanel()
        self.users = UsersPanel()
        self.events = EventsPanel()
        self.events_state = Static("events: connecting…", id="events-state", classes="detail")

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(self.client.base_url)
        with TabbedContent(id="tabs", initial="services"):
            with TabPane("1 Services", id="services"):
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
        return self.screen_stack[0].query_one(StatusBar)

    @property
    def tabs(self) -> TabbedContent:
        return self.screen_stack[0].query_one("#tabs", TabbedContent)

    def on_mount(self) -> None:
        # Countdowns advance between snapshots; twice a second is smooth enough and halves redraws.
        self.set_interval(0.5, self._tick)
        if self.client.token:
            self.resume_session()
        elif self.username and self.password:
            self.password_login(self.username, self.password)
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
        self.push_screen(LoginScreen(self.client, self.username, error), self.start)

    @work(exclusive=True, group="session")
    async def password_login(self, username: str, password: str) -> None:
        try:
            await self.client.login(username, password)
        except ApiError as exc:
            self.ask_login(f"{exc.code}: {exc.message}")
            return
        except Unreachable as exc:
            self.ask_login(f"cannot reach the API: {exc}")
            return
        self.resume_session()

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
        """Logged in: show what this account may see and start both feeds."""
        if me is None:
            return
        self.me = me
        self.status.set(me=me, link="connecting")
        if me.is_admin:
            self.tabs.show_tab("users")
        else:
            self.tabs.hide_tab("users")
        self.run_feed(self.poller.run)
        self.run_feed(self.feed.run)
        self.refresh_bindings()
        self._focus_table()

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
        compact = self.size.width < COMPACT_BELOW
        admin = bool(self.me and self.me.is_admin)
        self.services.show(snapshot, compact, 0.0)
        self.campaigns.show(snapshot, compact, show_owner=admin)
        if admin:
            self.users.show(snapshot)
        self.events.set_tz(snapshot.business_tz)
        self.status.set(link="live", snapshot=snapshot)
        self.sub_title = "live"

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
        text = {"live": "events: live", "down": "events: reconnecting…", "auth": "events: session ended",
                "unavailable": "events: this API has no event stream"}.get(state, state)
        self.events_state.update(text)

    def _tick(self) -> None:
        if self.snapshot is not None and self.services.is_attached and self.is_running:
            try:
                self.services.tick(self.clock() - self.received_at)
            except NoMatches:
                return  # the panel's table is mounting or already torn down

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self.apply(self.snapshot)

    # --- navigation -----------------------------------------------------------------------

    def visible_tabs(self) -> list[str]:
        return [t for t in TABS if t != "users" or (self.me and self.me.is_admin)]

    def action_tab(self, tab: str) -> None:
        if tab in self.visible_tabs():
            self.tabs.active = tab
            self.call_after_refresh(self._focus_table)

    def action_cycle(self, step: int) -> None:
        tabs = self.visible_tabs()
        current = self.tabs.active if self.tabs.active in tabs else tabs[0]
        self.action_tab(tabs[(tabs.index(current) + step) % len(tabs)])

    def action_filter(self) -> None:
        self.tabs.active = "events"
        # Focus once the pane is displayed: a hidden widget cannot take focus.
        self.call_after_refresh(self.events.query_one("#events-filter", Input).focus)

    def action_leave_filter(self) -> None:
        self._focus_table()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.events.show(self.tabs.active == "events")
        self.refresh_bindings()

    def _focus_table(self) -> None:
        tables = self.screen_stack[0].query_one(f"#{self.tabs.active or 'services'}", TabPane).query(KeyedTable)
        if tables:
            tables.first().focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that do not apply: on another panel, before login, or admin-only for users."""
        if action in ("quit", "leave_filter"):
            return True
        if self.screen is not self.screen_stack[0] or self.me is None:
            return False
        if action == "campaign":
            return self.tabs.active == "campaigns"
        if action in ("service", "toggle_service"):
            return self.me.is_admin and self.tabs.active == "services"
        return True

    # --- actions --------------------------------------------------------------------------

    def action_campaign(self, verb: CampaignVerb) -> None:
        campaign = self.campaigns.selected()
        ask = "Cancel campaign [b]{}[/b]? Its pending mails will not be sent." if verb == "cancel" else None
        self._act_on_selected("campaign", campaign, verb, ask)

    def action_service(self, verb: ServiceVerb) -> None:
        service = self.services.selected()
        ask = "Reset today's quota of [b]{}[/b] now?" if verb == "reset-now" else None
        self._act_on_selected("service", service, verb, ask)

    def _act_on_selected(self, kind: str, item: CampaignView | ServiceView | None, verb: str,
                         ask: str | None) -> None:
        """Run `verb` on the selected row, after a confirmation when `ask` (a format with the name) is given."""
        if item is None:
            self.notify(f"no {kind} selected", severity="warning")
            return
        run = lambda: self.act(kind, item.id, verb, item.name)  # noqa: E731
        if ask is not None:
            self.confirm(ask.format(item.name), run)
        else:
            run()

    def action_toggle_service(self) -> None:
        service = self.services.selected()
        if service is None:
            self.notify("no service selected", severity="warning")
        elif service.enabled:
            self.confirm(f"Disable service [b]{service.name}[/b]? Nothing will be sent through it.",
                         lambda: self.act("service", service.id, "disable", service.name))
        else:
            self.act("service", service.id, "enable", service.name)

    def confirm(self, question: str, then: Callable[[], object]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.push_screen(ConfirmScreen(question), answered)

    @work(group="actions")
    async def act(self, target: str, ident: str, verb: str, name: str) -> None:
        try:
            if target == "campaign":
                await self.client.campaign_action(ident, verb)  # type: ignore[arg-type]
            else:
                await self.client.service_action(ident, verb)  # type: ignore[arg-type]
        except ApiError as exc:
            self.notify(exc.message, title=exc.code, severity="error")
            return
        except Unreachable as exc:
            self.notify(f"the API is unreachable: {exc}", title="not sent", severity="error")
            return
        self.notify(f"{DONE.get(verb, verb)} {name}")
        self.poller.poke()
