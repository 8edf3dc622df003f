"""The Users panel (admin): quota left, running campaigns and share of recent sends."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text

from tui.layout import Column, Row, Widths
from tui.models import Overview, UserView
from tui.panels.users import USER_SORT, user_columns, user_detail, user_rows, user_texts
from tui.widgets.table_panel import TablePanel


class UsersPanel(TablePanel[UserView]):
    """One row per user account."""

    TAB = "users"
    SORT = USER_SORT

    def items(self, snapshot: Overview) -> list[UserView]:
        return list(snapshot.users)

    def texts(self, item: UserView) -> Iterable[str]:
        return user_texts(item)

    def columns(self, width: int) -> list[Column]:
        return user_columns(width)

    def rows(self, snapshot: Overview, items: list[UserView], w: Widths) -> list[Row]:
        return user_rows(snapshot, items, w)

    def detail(self, item: UserView | None) -> Text:
        return user_detail(item, self.snapshot)
