"""The Users panel (admin): quota left, running campaigns and share of recent sends."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from tui.models import Overview
from tui.panels import user_columns, user_rows
from tui.widgets.keyed_table import KeyedTable


class UsersPanel(Vertical):
    """One row per user account."""

    def __init__(self) -> None:
        super().__init__(id="users-panel")

    def compose(self) -> ComposeResult:
        yield KeyedTable(id="users-table")

    def show(self, snapshot: Overview) -> None:
        table = self.query_one("#users-table", KeyedTable)
        table.set_layout(user_columns())
        table.show(user_rows(snapshot))
