"""The Services panel: live state of every sending service."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.models import Overview, ServiceView
from tui.panels import service_columns, service_detail, service_rows, service_state
from tui.widgets.keyed_table import KeyedTable


class ServicesPanel(Vertical):
    """Table of services plus a detail line for the selected one."""

    def __init__(self) -> None:
        super().__init__(id="services-panel")
        self.snapshot: Overview | None = None
        self.compact = True

    def compose(self) -> ComposeResult:
        yield KeyedTable(id="services-table")
        yield Static(id="services-detail", classes="detail")

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#services-table", KeyedTable)

    def selected(self) -> ServiceView | None:
        key = self.table.selected_key
        services = self.snapshot.services if self.snapshot else []
        return next((s for s in services if s.id == key), None)

    def show(self, snapshot: Overview, compact: bool, elapsed: float) -> None:
        self.snapshot, self.compact = snapshot, compact
        self.table.set_layout(service_columns(compact))
        self.table.show(service_rows(snapshot, compact, elapsed))
        self._detail()

    def tick(self, elapsed: float) -> None:
        """Advance the interval countdowns between snapshots (state cells only)."""
        if self.snapshot is None:
            return
        tz = self.snapshot.business_tz
        for s in self.snapshot.services:
            if s.state in ("interval", "throttled") and s.id in self.table._cells:
                cells = self.table._cells[s.id]
                state = service_state(s, tz, elapsed)
                if state != cells[1]:
                    self.table._cells[s.id] = cells[:1] + (state,) + cells[2:]
                    self.table.update_cell(s.id, "state", state)

    def _detail(self) -> None:
        tz = self.snapshot.business_tz if self.snapshot else "UTC"
        self.query_one("#services-detail", Static).update(service_detail(self.selected(), tz))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()
