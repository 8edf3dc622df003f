"""The Campaigns panel: progress, rate and quota-aware ETA of running, paused, pending and recent campaigns."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text

from tui.capacity import Capacity, capacity
from tui.layout import Column, Row, Widths
from tui.models import CampaignView, Overview
from tui.panels.campaigns import CAMPAIGN_SORT, campaign_columns, campaign_detail, campaign_rows, campaign_texts
from tui.table_view import TableView
from tui.widgets.table_panel import TablePanel


class CampaignsPanel(TablePanel[CampaignView]):
    """Table of campaigns plus the selected one's counts, pause message or wait for a reset."""

    TAB = "campaigns"
    SORT = CAMPAIGN_SORT

    def __init__(self, view: TableView) -> None:
        super().__init__(view)
        self.show_owner = True
        # Which services each owner may use (by owner id), as the app last fetched them.
        self.mappings: dict[str, frozenset[str]] = {}

    def capacities(self) -> dict[str, Capacity]:
        if self.snapshot is None:
            return {}
        services = self.snapshot.services
        owners = {c.owner_id for c in self.snapshot.campaigns}
        return {o: capacity(services, self.mappings.get(o)) for o in owners}

    def items(self, snapshot: Overview) -> list[CampaignView]:
        return list(snapshot.campaigns)

    def texts(self, item: CampaignView) -> Iterable[str]:
        return campaign_texts(item)

    def columns(self, width: int) -> list[Column]:
        return campaign_columns(width, self.show_owner)

    def rows(self, snapshot: Overview, items: list[CampaignView], w: Widths) -> list[Row]:
        return campaign_rows(snapshot, items, w, self.capacities())

    def detail(self, item: CampaignView | None) -> Text:
        tz = self.snapshot.business_tz if self.snapshot else "UTC"
        return campaign_detail(item, tz, self.capacities().get(item.owner_id) if item else None)
