"""The one-line status bar: connection state, who is logged in, and the headline totals."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual.widgets import Static

from tui.format import count, local_time
from tui.models import Me, Overview

Link = Literal["connecting", "live", "reconnecting", "login"]


def status_line(link: Link, me: Me | None, snapshot: Overview | None, api: str) -> Text:
    """Pure: the status bar's content for a connection state, an account and a snapshot."""
    text = Text()
    match link:
        case "live":
            text.append(" ● live ", style="bold black on green")
        case "reconnecting":
            text.append(" ⟳ reconnecting… ", style="bold black on yellow")
        case "login":
            text.append(" ○ login ", style="bold black on grey70")
        case _:
            text.append(" … connecting ", style="bold black on grey70")
    if snapshot is not None:
        text.append(" " + local_time(snapshot.now, snapshot.business_tz, "%H:%M:%S"), style="bold")
    if me is not None:
        text.append(f" {me.username}", style="bold cyan")
        if not me.is_admin:
            # A user's own quota comes first: it is what decides whether their campaigns run.
            own = next((u for u in snapshot.users if u.id == me.id), None) if snapshot else None
            text.append(f" quota {count(own.quota_remaining if own else me.quota_remaining)}", style="bold")
    if snapshot is None:
        text.append(f"  {api}", style="grey50")
        return text
    t = snapshot.totals
    text.append(" │ ready ")
    text.append(f"{t.ready}", style="bold green")
    text.append(f"/{t.services}")
    if t.frozen:
        text.append(f" frozen {t.frozen}", style="bold red")
    if t.exhausted:
        text.append(f" exh {t.exhausted}", style="yellow")
    text.append(f" │ run {t.running_campaigns} │ {count(t.sent_last_minute)}/min │ pend {count(t.pending)}")
    return text


class StatusBar(Static):
    """Renders `status_line`; the app pushes state into it."""

    def __init__(self, api: str) -> None:
        super().__init__(id="status-bar")
        self.api = api
        self.link: Link = "connecting"
        self.me: Me | None = None
        self.snapshot: Overview | None = None

    def on_mount(self) -> None:
        self.redraw()

    def set(self, *, link: Link | None = None, me: Me | None = None, snapshot: Overview | None = None) -> None:
        self.link = link or self.link
        self.me = me or self.me
        self.snapshot = snapshot or self.snapshot
        self.redraw()

    def redraw(self) -> None:
        self.update(status_line(self.link, self.me, self.snapshot, self.api))
