"""`l`: sending limits — domain groups with their minute and day usage against their limits, and the
engine-wide per-minute cap (GET /domain-groups, GET /engine/send-rate-limit; any user reads them)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from tui.panels.details import missing
from tui.panels.limits import cap_line, groups_table
from tui.screens.detail import DetailScreen


class LimitsScreen(DetailScreen):
    """Reuses the detail screens' fetch-in-a-worker loop; the whole content is fetched."""

    def __init__(self) -> None:
        super().__init__("limits")

    def parts(self) -> dict[str, Any]:
        client = self.dash.client
        return {"groups": client.domain_groups(), "cap": client.send_rate_limit()}

    def heading(self) -> RenderableType:
        page = self.fetched.get("groups")
        shown = f"{page.total} domain groups" if page else "…"
        return Text.assemble(" Sending limits ", (shown, "bold"), "  (Esc: back)")

    def live(self) -> RenderableType:
        return ""

    def body(self) -> RenderableType:
        page = self.fetched.get("groups")
        groups = missing(self.errors.get("groups"), "domain groups") if page is None else groups_table(page.items)
        return Group(cap_line(self.fetched.get("cap")), Text(""), groups)
