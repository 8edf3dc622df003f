"""A table panel: a `/` filter line, a sortable keyed table and a detail line for the selected row."""

from __future__ import annotations

from typing import Generic, Iterable, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Input, Static

from tui.layout import Column, Row, Widths, widths
from tui.models import Overview
from tui.table_view import SortKeys, TableView, arrange, sort_label
from tui.widgets.keyed_table import KeyedTable

T = TypeVar("T")


class TablePanel(Vertical, Generic[T]):
    """Subclasses say which items, columns, rows, sort keys and filter texts; this does the rest."""

    TAB = ""
    SORT: SortKeys = {}

    def __init__(self, view: TableView) -> None:
        super().__init__(id=f"{self.TAB}-panel")
        self.view = view
        self.snapshot: Overview | None = None
        self.shown: list[T] = []  # the rows on screen, after filter and sort

    def compose(self) -> ComposeResult:
        yield Input(value=self.view.needle, placeholder=f"/ filter {self.TAB} (Esc: back to the table)",
                    id=f"{self.TAB}-filter", classes="filter")
        yield KeyedTable(id=f"{self.TAB}-table")
        yield Static(id=f"{self.TAB}-detail", classes="detail")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.cursor_blink = False
        field.set_class(bool(self.view.needle), "-shown")

    # --- what subclasses provide ------------------------------------------------------------

    def items(self, snapshot: Overview) -> list[T]:
        raise NotImplementedError

    def texts(self, item: T) -> Iterable[str]:
        raise NotImplementedError

    def columns(self, width: int) -> list[Column]:
        raise NotImplementedError

    def rows(self, snapshot: Overview, items: list[T], w: Widths) -> list[Row]:
        raise NotImplementedError

    def detail(self, item: T | None) -> Text:
        raise NotImplementedError

    # --- drawing ----------------------------------------------------------------------------

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def selected(self) -> T | None:
        key = self.table.selected_key
        return next((i for i in self.shown if getattr(i, "id", None) == key), None)

    def show(self, snapshot: Overview) -> None:
        self.snapshot = snapshot
        self.redraw()

    def redraw(self) -> None:
        if self.snapshot is None or not self.is_attached:
            return
        try:
            self._draw(self.snapshot)
        except NoMatches:
            return  # the children are mounting or already gone (the app is closing)

    def _draw(self, snapshot: Overview) -> None:
        columns = [c._replace(label=sort_label(c.label, c.key, self.view)) for c in self.columns(self.app.size.width)]
        self.table.set_layout(columns)
        self.shown = arrange(self.items(snapshot), self.view, self.SORT, self.texts)
        self.table.show(self.rows(snapshot, self.shown, widths(columns)))
        self.show_detail()

    def show_detail(self) -> None:
        self.query_one(f"#{self.TAB}-detail", Static).update(self.detail(self.selected()))

    # --- sort and filter --------------------------------------------------------------------

    def cycle_sort(self) -> None:
        self.view.cycle([c.key for c in self.columns(self.app.size.width) if c.key in self.SORT])
        self.redraw()

    def open_filter(self) -> None:
        field = self.query_one(Input)
        field.add_class("-shown")
        field.focus()

    def close_filter(self) -> None:
        field = self.query_one(Input)
        field.set_class(bool(field.value), "-shown")
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.view.needle = event.value
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.close_filter()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in self.SORT:
            self.view.click(key)
            self.redraw()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()
