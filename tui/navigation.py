"""Moving around the dashboard: tabs, filter, sort, drill-down, help and the command palette."""

from __future__ import annotations

from typing import Any, Iterable

from textual.actions import parse
from textual.app import SystemCommand
from textual.command import CommandPalette
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import DataTable, TabbedContent, TabPane

from tui.base import DashboardBase
from tui.screens.alerts import AlertsScreen
from tui.screens.limits import LimitsScreen
from tui.screens.details import CampaignDetail, ServiceDetail, UserDetail
from tui.screens.help import HelpScreen, key_rows
from tui.widgets.keyed_table import KeyedTable

TABS = ("services", "campaigns", "users", "events")
# Actions that belong to one tab of the main screen, and those only administrators have.
TAB_ACTIONS = {"campaign": ("campaigns",), "service": ("services",), "toggle_service": ("services",),
               "mark": ("services",), "unfreeze_marked": ("services",), "remaining": ("services",),
               "pause_user": ("users",), "quota": ("users",), "map_services": ("users",), "chatty": ("events",)}
ADMIN_ACTIONS = ("alerts", "service", "toggle_service", "mark", "unfreeze_marked", "remaining", "pause_user", "quota",
                 "map_services")
# The main screen's own actions; anything else (Textual's focus_next on a form, the palette…) is never
# vetoed here — vetoing focus_next is what made Tab type into the login form instead of moving on.
MAIN_ONLY = ("alerts", "limits", "cycle", "tab", "open", "filter", "sort", "leave_filter", *TAB_ACTIONS)


class Navigation(DashboardBase):
    """Mixed into the Dashboard."""

    def visible_tabs(self) -> list[str]:
        return [t for t in TABS if t != "users" or self.is_admin]

    def panel(self, tab: str | None = None) -> Any:
        return {"services": self.services, "campaigns": self.campaigns, "users": self.users,
                "events": self.events}[tab or self.tabs.active or "services"]

    def action_tab(self, tab: str) -> None:
        if tab in self.visible_tabs():
            self.tabs.active = tab
            self.view.tab = tab
            self.call_after_refresh(self._focus_table)

    def action_cycle(self, step: int) -> None:
        tabs = self.visible_tabs()
        current = self.tabs.active if self.tabs.active in tabs else tabs[0]
        self.action_tab(tabs[(tabs.index(current) + step) % len(tabs)])

    def action_filter(self) -> None:
        # Focus once the pane is displayed: a hidden widget cannot take focus.
        self.call_after_refresh(self.panel().open_filter)

    def action_leave_filter(self) -> None:
        self.panel().close_filter()

    def action_sort(self) -> None:
        self.panel().cycle_sort()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if self.me is not None and self.tabs.active:
            self.view.tab = self.tabs.active
        self.events.show(self.tabs.active == "events")
        self.refresh_bindings()

    def _focus_table(self) -> None:
        tables = self.main.query_one(f"#{self.tabs.active or 'services'}", TabPane).query(KeyedTable)
        if tables and self.screen is self.main:
            # At once, not deferred like Widget.focus(): a deferred focus landing after the operator
            # switched tabs again would pull the tabs back to this table's pane.
            self.set_focus(tables.first())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that do not apply: on another panel or screen, before login, or admin-only for users."""
        if action not in MAIN_ONLY:
            return True
        # The palette asks which keys apply to the screen it was opened over.
        under = self.screen_stack[-2] if isinstance(self.screen, CommandPalette) and len(self.screen_stack) > 1 \
            else self.screen
        if under is not self.main or self.me is None:
            return False
        if action in ADMIN_ACTIONS and not self.me.is_admin:
            return False
        if action in TAB_ACTIONS:
            return self.tabs.active in TAB_ACTIONS[action]
        return True

    # --- drill-down -------------------------------------------------------------------------

    def action_open(self) -> None:
        tab = self.tabs.active
        if tab == "events":
            return
        item = self.panel().selected()
        if item is None:
            return
        screen = {"campaigns": CampaignDetail, "services": ServiceDetail, "users": UserDetail}[tab or "services"]
        self.push_screen(screen(item.id))

    def action_alerts(self) -> None:
        self.push_screen(AlertsScreen())

    def action_limits(self) -> None:
        self.push_screen(LimitsScreen())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.screen is self.main:
            self.action_open()

    # --- discoverability --------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette offers every action of the current screen (by its key's description) and the screens."""
        yield from super().get_system_commands(screen)  # type: ignore[misc]
        if self.me is None:
            return
        if screen is self.main:
            for tab in self.visible_tabs():
                yield SystemCommand(f"Show {tab}", f"switch to the {tab} panel",
                                    lambda tab=tab: self.action_tab(tab))  # type: ignore[misc]
            item = self.panel().selected() if self.tabs.active != "events" else None
            if item is not None:
                yield SystemCommand(f"Open {getattr(item, 'name', None) or getattr(item, 'username', '')}",
                                    "the detail screen of the selected row", self.action_open)
        described = {key: text for key, text, enabled in key_rows(screen) if enabled}
        for active in screen.active_bindings.values():
            key = self.get_key_display(active.binding)
            if active.enabled and key in described:
                yield SystemCommand(described.pop(key), f"key {key}",
                                    lambda a=active: _invoke(a.node, a.binding.action))  # type: ignore[misc]


def _invoke(node: DOMNode, action: str) -> None:
    """Run a binding's action directly: from the palette, the screen the key belongs to is not on top yet."""
    _, name, params = parse(action)
    getattr(node, f"action_{name}")(*params)
