"""The fleet throughput strip: sends per minute of every service together over the last hour."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from tui.format import count
from tui.models import Overview
from tui.throughput import merge, series


def fleet_label(values: list[int]) -> Text:
    latest = values[-1] if values else 0
    return Text.assemble(("fleet ", "bold"), (f"{count(latest)}/min", "bold cyan"),
                         f" · peak {count(max(values, default=0))} · {len(values)}m")


class FleetChart(Horizontal):
    """A label with the figures, then Textual's Sparkline of the same series."""

    def __init__(self) -> None:
        super().__init__(id="fleet")
        self.history: dict[int, int] = {}

    def compose(self) -> ComposeResult:
        yield Static(fleet_label([]), id="fleet-label")
        yield Sparkline([], id="fleet-spark")

    def show(self, snapshot: Overview) -> None:
        self.history = merge(self.history, snapshot)
        values = series(self.history)
        self.query_one("#fleet-label", Static).update(fleet_label(values))
        self.query_one(Sparkline).data = [float(v) for v in values]
