"""The Services panel: live state of every sending service, with marks for bulk actions."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text

from tui.layout import Column, Row, Widths
from tui.models import Overview, ServiceView
from tui.panels.services import (SERVICE_SORT, service_columns, service_detail, service_rows, service_state,
                                 service_texts, throughput_peak)
from tui.table_view import TableView
from tui.widgets.table_panel import TablePanel


class ServicesPanel(TablePanel[ServiceView]):
    """Table of services plus a detail line for the selected one."""

    TAB = "services"
    SORT = SERVICE_SORT

    def __init__(self, view: TableView) -> None:
        super().__init__(view)
        self.marked: set[str] = set()
        self.elapsed = 0.0

    def items(self, snapshot: Overview) -> list[ServiceView]:
        return list(snapshot.services)

    def texts(self, item: ServiceView) -> Iterable[str]:
        return service_texts(item)

    def columns(self, width: int) -> list[Column]:
        return service_columns(width)

    def rows(self, snapshot: Overview, items: list[ServiceView], w: Widths) -> list[Row]:
        return service_rows(snapshot, items, w, self.elapsed, frozenset(self.marked))

    def detail(self, item: ServiceView | None) -> Text:
        snapshot = self.snapshot
        return service_detail(item, snapshot.business_tz if snapshot else "UTC",
                              throughput_peak(snapshot.services) if snapshot else 0)

    def toggle_mark(self) -> None:
        service = self.selected()
        if service is not None:
            self.marked ^= {service.id}
            self.redraw()

    def show(self, snapshot: Overview, elapsed: float = 0.0) -> None:  # type: ignore[override]
        self.elapsed = elapsed
        # Marks on services that are gone would act on nothing.
        self.marked &= {s.id for s in snapshot.services}
        super().show(snapshot)

    def tick(self, elapsed: float) -> None:
        """Advance the interval countdowns between snapshots (state cells only)."""
        if self.snapshot is None:
            return
        tz = self.snapshot.business_tz
        for s in self.shown:
            if s.state in ("interval", "throttled") and s.id in self.table._cells:
                cells = self.table._cells[s.id]
                state = service_state(s, tz, elapsed)
                if state != cells[1]:
                    self.table._cells[s.id] = cells[:1] + (state,) + cells[2:]
                    self.table.update_cell(s.id, "state", state)
