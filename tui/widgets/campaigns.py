"""The Campaigns panel: progress, rate and ETA of running, paused, pending and recent campaigns."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.models import CampaignView, Overview
from tui.panels import campaign_columns, campaign_detail, campaign_rows
from tui.widgets.keyed_table import KeyedTable


class CampaignsPanel(Vertical):
    """Table of campaigns plus the selected one's counts and pause message."""

    def __init__(self) -> None:
        super().__init__(id="campaigns-panel")
        self.snapshot: Overview | None = None

    def compose(self) -> ComposeResult:
        yield KeyedTable(id="campaigns-table")
        yield Static(id="campaigns-detail", classes="detail")

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#campaigns-table", KeyedTable)

    def selected(self) -> CampaignView | None:
        key = self.table.selected_key
        campaigns = self.snapshot.campaigns if self.snapshot else []
        return next((c for c in campaigns if c.id == key), None)

    def show(self, snapshot: Overview, compact: bool, show_owner: bool) -> None:
        self.snapshot = snapshot
        self.table.set_layout(campaign_columns(compact, show_owner))
        self.table.show(campaign_rows(snapshot, compact, show_owner))
        self._detail()

    def _detail(self) -> None:
        tz = self.snapshot.business_tz if self.snapshot else "UTC"
        self.query_one("#campaigns-detail", Static).update(campaign_detail(self.selected(), tz))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()
