"""What the dashboard's parts share: the attributes and lookups the action and navigation mixins use.

Dashboard (tui.app) fills them in; the mixins (tui.actions, tui.navigation) subclass this so
that they are typed against one declared surface rather than against the app that mixes them in.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.screen import Screen
from textual.widgets import TabbedContent

from tui.client import ApiClient
from tui.live import Poller
from tui.models import Me, Overview
from tui.table_view import ViewState
from tui.widgets.campaigns import CampaignsPanel
from tui.widgets.events import EventsPanel
from tui.widgets.services import ServicesPanel
from tui.widgets.users import UsersPanel


class DashboardBase(App[None]):
    client: ApiClient
    me: Me | None
    snapshot: Overview | None
    poller: Poller
    view: ViewState
    stream: str
    services: ServicesPanel
    campaigns: CampaignsPanel
    users: UsersPanel
    events: EventsPanel

    @property
    def main(self) -> Screen[Any]:
        return self.screen_stack[0]

    @property
    def tabs(self) -> TabbedContent:
        return self.main.query_one("#tabs", TabbedContent)

    @property
    def tz(self) -> str:
        return self.snapshot.business_tz if self.snapshot else "UTC"

    @property
    def is_admin(self) -> bool:
        return bool(self.me and self.me.is_admin)

    def refresh_mappings(self) -> Any:
        """Read the users' service mappings again (after a mapping form saved)."""
        raise NotImplementedError

    def _stream_state(self, state: str) -> None:
        raise NotImplementedError
