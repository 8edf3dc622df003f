"""`a` (admins): the alerts raised, newest first, with each channel's delivery state (GET /alerts)."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text

from tui.panels.feedback import alerts_table
from tui.panels.details import missing
from tui.screens.detail import DetailScreen


class AlertsScreen(DetailScreen):
    """Reuses the detail screens' fetch-in-a-worker loop; the whole content is fetched."""

    def __init__(self) -> None:
        super().__init__("alerts")

    def parts(self) -> dict[str, Any]:
        return {"alerts": self.dash.client.alerts()}

    def heading(self) -> RenderableType:
        page = self.fetched.get("alerts")
        shown = f"{len(page.items)} of {page.total}" if page else "…"
        return Text.assemble(" Alerts ", (shown, "bold"), "  newest first  (Esc: back)")

    def live(self) -> RenderableType:
        return ""

    def body(self) -> RenderableType:
        page = self.fetched.get("alerts")
        if page is None:
            return missing(self.errors.get("alerts"), "alerts")
        return alerts_table(page.items, self.dash.tz)
