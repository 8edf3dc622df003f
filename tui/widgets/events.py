"""The Events panel: a filterable log of the live event stream, newest first."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input

from tui.models import LiveEvent
from tui.panels.events import event_columns, event_rows
from tui.table_view import TableView
from tui.widgets.keyed_table import KeyedTable

KEEP = 1000  # events remembered (the filter searches these)
SHOWN = 300  # rows in the table


class EventsPanel(Vertical):
    """Filter input above a table; new events are batched and drawn a few times a second."""

    TAB = "events"

    def __init__(self, view: TableView) -> None:
        super().__init__(id="events-panel")
        self.view = view
        self.chatty = False
        # user id -> username, from the latest snapshot: filtering by a user's name finds their events.
        self.usernames: dict[str, str] = {}  # progress, quota-used and interval events: off unless toggled with `v`
        self.events: deque[LiveEvent] = deque(maxlen=KEEP)
        self.tz = "UTC"
        self._fresh: list[LiveEvent] = []  # arrived since the last draw
        self._redraw = True  # the whole table must be redrawn (filter, zone or size changed)
        # Drawn only while its tab is showing; a hidden log just collects.
        self.visible = False

    def compose(self) -> ComposeResult:
        yield Input(value=self.view.needle, placeholder="/ filter events (kind, text or name)", id="events-filter",
                    classes="filter -shown")
        yield KeyedTable(id="events-table")

    def on_mount(self) -> None:
        self.query_one("#events-filter", Input).cursor_blink = False
        # Batching: a burst of progress events costs one redraw, not one per event.
        self.set_interval(0.5, self.flush)

    def add(self, event: LiveEvent) -> None:
        self.events.append(event)
        if len(self._fresh) < SHOWN:
            self._fresh.append(event)
        else:
            self._redraw = True  # so many arrived unseen that a full redraw is cheaper

    def set_users(self, usernames: dict[str, str]) -> None:
        if usernames != self.usernames:
            self.usernames = usernames
            if self.view.needle:
                self._redraw = True

    def set_tz(self, tz: str) -> None:
        if tz != self.tz:
            self.tz, self._redraw = tz, True

    def flush(self, force: bool = False) -> None:
        if force:
            self._redraw = True
        if not (self._redraw or self._fresh) or not self.is_attached or not self.visible:
            return
        table = self.query_one("#events-table", KeyedTable)
        # A panel that was hidden until now has no size yet; it spans the screen anyway.
        if table.set_layout(event_columns(self.size.width or self.app.size.width)):
            self._redraw = True
        needle = self.view.needle
        if self._redraw or len(self._fresh) >= SHOWN:
            table.show(event_rows(self.events, needle, self.tz, SHOWN, self.chatty, self.usernames))
        else:
            table.push_front(event_rows(self._fresh, needle, self.tz, SHOWN, self.chatty, self.usernames), SHOWN)
        self._fresh, self._redraw = [], False

    def show(self, visible: bool) -> None:
        self.visible = visible
        if visible:
            self.flush(force=True)

    def toggle_chatty(self) -> None:
        self.chatty = not self.chatty
        self.flush(force=True)

    def open_filter(self) -> None:
        self.query_one("#events-filter", Input).focus()

    def close_filter(self) -> None:
        self.query_one(KeyedTable).focus()

    def cycle_sort(self) -> None:
        self.app.notify("the event log is always newest first", severity="information")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.view.needle = event.value
        self.flush(force=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.close_filter()

    def on_resize(self) -> None:
        self.flush(force=True)
