"""The campaigns table: layout by width, progress, quota-aware ETA, sort keys, detail line."""

from __future__ import annotations

from typing import Mapping

from rich.text import Text

from tui.capacity import Capacity, Eta, campaign_eta
from tui.format import bar, clip, count, duration, local_time, percent, rate
from tui.layout import Cell, Column, Row, Spec, Widths, fit
from tui.models import CampaignView, Overview
from tui.panels.services import COMPACT_BELOW
from tui.table_view import SortKeys

PAUSE_LABELS = {
    "USER": "by user",
    "NO_USER_QUOTA": "no quota",
    "NO_AVAILABLE_SERVICE": "no svc",
    "SERVICE_QUOTA_EXHAUSTED": "svc quota",
    "OUTSIDE_SEND_WINDOW": "window",
}
FINISHED = ("completed", "failed", "cancelled")


def campaign_columns(width: int, show_owner: bool = True) -> list[Column]:
    owner = [Spec("owner", "Owner", 6, 1, 16)] if show_owner else []
    if width < COMPACT_BELOW:
        specs = [Spec("name", "Campaign", 10, 3, 40), *owner, Spec("status", "Status", 16),
                 Spec("progress", "Progress", 8, 1, 20), Spec("counts", "Sent/Fail/Pend", 14),
                 Spec("rate", "Rate", 5), Spec("eta", "ETA", 6, 1, 24)]
    else:
        specs = [Spec("name", "Campaign", 14, 3, 40), *[o._replace(min=8) for o in owner],
                 Spec("status", "Status", 16, 1, 22), Spec("progress", "Progress", 10, 1, 20),
                 Spec("sent", "Sent", 6), Spec("failed", "Failed", 6), Spec("pending", "Pending", 7),
                 Spec("rate", "Rate", 6), Spec("eta", "ETA", 6, 2, 24)]
    return fit(specs, width)


def campaign_status(c: CampaignView, tz: str) -> Text:
    match c.status:
        case "running":
            return Text("running", style="bold green")
        case "paused":
            reason = PAUSE_LABELS.get(c.pause_reason or "", (c.pause_reason or "").lower())
            return Text(f"paused {reason}" if reason else "paused", style="yellow")
        case "pending":
            when = f" at {local_time(c.scheduled_at, tz)}" if c.scheduled_at else ""
            return Text("pending" + when, style="grey70")
        case "completed":
            return Text("completed", style="blue")
        case "failed":
            return Text("failed", style="bold red")
        case _:
            return Text(c.status, style="grey50")


def done_fraction(c: CampaignView) -> float:
    """What was attempted: a cancelled campaign stops short of full, whatever it refunded."""
    if c.status == "cancelled":
        return (c.sent + c.failed) / c.total if c.total else 0.0
    return c.progress


def progress_cell(c: CampaignView, width: int) -> Text:
    style = {"completed": "blue", "paused": "yellow", "cancelled": "grey50", "failed": "red"}.get(c.status, "green")
    fraction = done_fraction(c)
    return bar(fraction, max(1, width - 5), style) + Text(" " + percent(fraction),
                                                           style="grey50" if c.status == "cancelled" else "")


def eta_text(eta: Eta, tz: str, width: int) -> Text:
    """`waits for reset at 08:00`, shortened to what the column holds."""
    if eta.waits_until:
        at = local_time(eta.waits_until, tz)
        for text in (f"waits for reset at {at}", f"reset {at}", f"↻{at}"):
            if len(text) <= width:
                return Text(text, style="yellow")
        return Text(f"↻{at}"[:width], style="yellow")
    return Text(duration(eta.seconds))


def campaign_row(c: CampaignView, tz: str, w: Widths, cap: Capacity | None) -> Row:
    eta = eta_text(campaign_eta(c, cap), tz, w["eta"])
    name = clip(c.name, w["name"])
    failed = Text(count(c.failed), style="red" if c.failed else "")
    cells: list[Cell] = [name]
    if "owner" in w:
        cells.append(clip(c.owner, w["owner"]))
    cells += [campaign_status(c, tz), progress_cell(c, w["progress"])]
    if "counts" in w:
        cells.append(Text.assemble(count(c.sent), "/", failed, "/", count(c.pending)))
    else:
        cells += [count(c.sent), failed, count(c.pending)]
    cells += [rate(c.rate_per_minute), eta]
    return c.id, tuple(cells)


def campaign_rows(o: Overview, campaigns: list[CampaignView], w: Widths,
                  capacities: Mapping[str, Capacity] | None = None) -> list[Row]:
    """`capacities` by owner id; an owner without one is measured against the whole fleet."""
    return [campaign_row(c, o.business_tz, w, (capacities or {}).get(c.owner_id)) for c in campaigns]


CAMPAIGN_SORT: SortKeys = {
    "name": lambda c: c.name, "owner": lambda c: c.owner, "status": lambda c: c.status,
    "progress": done_fraction, "counts": lambda c: c.sent, "sent": lambda c: c.sent, "failed": lambda c: c.failed,
    "pending": lambda c: c.pending, "rate": lambda c: c.rate_per_minute, "eta": lambda c: c.eta_seconds,
}


def campaign_texts(c: CampaignView) -> list[str]:
    return [c.name, c.owner, c.status, c.pause_reason or ""]


def campaign_detail(c: CampaignView | None, tz: str, cap: Capacity | None = None) -> Text:
    if c is None:
        return Text("no campaign selected", style="grey50")
    text = Text.assemble((c.name, "bold"), f" · {c.owner} · {c.sent}/{c.total} sent · {c.failed} failed",
                         f" · {c.pending} pending · {c.cancelled} cancelled")
    eta = campaign_eta(c, cap)
    if c.scheduled_at and c.status == "pending":
        text.append(f"\nscheduled for {local_time(c.scheduled_at, tz, '%Y-%m-%d %H:%M')} {tz}")
    elif c.pause_reason:
        text.append(f"\npaused: {c.pause_reason}", style="yellow")
        if c.pause_message:
            text.append(f" — {c.pause_message}")
    elif eta.waits_until and cap is not None:
        where = "its services" if cap.known else "all services"
        text.append(f"\nwaits for reset at {local_time(eta.waits_until, tz)}: {c.pending} pending, "
                    f"{cap.remaining} left today on {where}", style="yellow")
    return text
