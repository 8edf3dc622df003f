"""Panels as pure functions of a snapshot: column layouts, row cells and detail lines."""

from __future__ import annotations

from typing import Iterable, NamedTuple

from rich.text import Text

from tui.format import bar, clip, count, duration, local_time, percent, rate, sparkline
from tui.models import CampaignView, LiveEvent, Overview, ServiceView, UserView

# Below this many columns the tables use their compact layouts (80×24 terminals).
COMPACT_BELOW = 100


class Column(NamedTuple):
    key: str
    label: str
    width: int


Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]

PAUSE_LABELS = {
    "USER": "by user",
    "NO_USER_QUOTA": "no quota",
    "NO_AVAILABLE_SERVICE": "no svc",
    "SERVICE_QUOTA_EXHAUSTED": "svc quota",
}


# --- services -------------------------------------------------------------------------------

def service_columns(compact: bool) -> list[Column]:
    return [
        Column("name", "Service", 11 if compact else 18),
        Column("state", "State", 21),
        Column("used", "Used / daily", 16 if compact else 20),
        Column("spm", "Sends/min", 10),
        Column("fail", "Err", 3),
        Column("reset", "Reset", 5),
    ] + ([] if compact else [Column("provider", "Provider", 9)])


def service_state(s: ServiceView, tz: str, elapsed: float = 0.0) -> Text:
    """The state cell; an interval countdown is advanced by the seconds since the snapshot."""
    if not s.enabled or s.state == "disabled":
        return Text("disabled", style="grey50")
    match s.state:
        case "frozen":
            return Text("FROZEN (abnormal)", style="bold white on red")
        case "exhausted":
            return Text(f"exhausted until {local_time(s.next_reset_at, tz)}", style="yellow")
        case "throttled":
            left = max(0.0, s.interval_remaining - elapsed)
            return Text(f"throttled {duration(left)}" if left else "throttled", style="magenta")
        case "interval":
            left = max(0.0, s.interval_remaining - elapsed)
            if left <= 0:
                return Text("ready", style="bold green")
            return Text(f"interval {left:.1f}s", style="cyan")
        case _:
            return Text("ready", style="bold green")


def service_used(s: ServiceView, compact: bool) -> Text:
    numbers = f"{count(s.used_today)}/{count(s.daily_quota)}"
    fraction = s.used_today / s.daily_quota if s.daily_quota else 0.0
    style = "red" if fraction >= 0.95 else "yellow" if fraction >= 0.75 else "green"
    width = 16 if compact else 20
    bar_width = 6 if compact else 10
    text = Text(numbers.rjust(width - bar_width - 1) + " ")
    return text + bar(fraction, bar_width, style)


def service_row(s: ServiceView, tz: str, compact: bool, elapsed: float = 0.0) -> Row:
    fails = Text(str(s.consecutive_failures), style="bold red" if s.consecutive_failures else "grey50")
    cells: tuple[Cell, ...] = (
        clip(s.name, 11 if compact else 18),
        service_state(s, tz, elapsed),
        service_used(s, compact),
        sparkline(s.sends_per_minute),
        fails,
        local_time(s.next_reset_at, tz),
    )
    if not compact:
        cells += (s.provider,)
    return s.id, cells


def service_rows(o: Overview, compact: bool, elapsed: float = 0.0) -> list[Row]:
    return [service_row(s, o.business_tz, compact, elapsed) for s in o.services]


def service_detail(s: ServiceView | None, tz: str) -> Text:
    if s is None:
        return Text("no service selected", style="grey50")
    text = Text.assemble((s.name, "bold"), f" · {s.provider} · every {s.send_interval}s · ",
                         f"{s.remaining_today} left · resets {s.reset_time or '—'} {tz}")
    if s.abnormal_reason:
        text.append(f"\nabnormal: {s.abnormal_reason}", style="red")
    return text


# --- campaigns ------------------------------------------------------------------------------

def campaign_columns(compact: bool, show_owner: bool = True) -> list[Column]:
    if compact:
        cols = [Column("name", "Campaign", 11), Column("owner", "Owner", 6), Column("status", "Status", 16),
                Column("progress", "Progress", 8), Column("counts", "Sent/Fail/Pend", 14),
                Column("rate", "Rate", 5), Column("eta", "ETA", 5)]
    else:
        cols = [Column("name", "Campaign", 20), Column("owner", "Owner", 10), Column("status", "Status", 22),
                Column("progress", "Progress", 16), Column("sent", "Sent", 6), Column("failed", "Failed", 6),
                Column("pending", "Pending", 7), Column("rate", "Rate", 6), Column("eta", "ETA", 6)]
    return cols if show_owner else [c for c in cols if c.key != "owner"]


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


def campaign_row(c: CampaignView, tz: str, compact: bool, show_owner: bool = True) -> Row:
    done = c.status in ("completed", "failed", "cancelled")
    style = "blue" if c.status == "completed" else "yellow" if c.status == "paused" else "green"
    progress = bar(c.progress, 3 if compact else 11, style) + Text(" " + percent(c.progress))
    eta = "—" if done or c.status != "running" else duration(c.eta_seconds)
    name = clip(c.name, 11 if compact else 20)
    owner = clip(c.owner, 6 if compact else 10)
    if compact:
        counts = Text.assemble(count(c.sent), "/", (count(c.failed), "red" if c.failed else ""), "/",
                               count(c.pending))
        cells: tuple[Cell, ...] = (name, owner, campaign_status(c, tz), progress, counts,
                                   rate(c.rate_per_minute), eta)
    else:
        cells = (name, owner, campaign_status(c, tz), progress, count(c.sent),
                 Text(count(c.failed), style="red" if c.failed else ""), count(c.pending),
                 rate(c.rate_per_minute), eta)
    if not show_owner:
        cells = cells[:1] + cells[2:]
    return c.id, cells


def campaign_rows(o: Overview, compact: bool, show_owner: bool = True) -> list[Row]:
    return [campaign_row(c, o.business_tz, compact, show_owner) for c in o.campaigns]


def campaign_detail(c: CampaignView | None, tz: str) -> Text:
    if c is None:
        return Text("no campaign selected", style="grey50")
    text = Text.assemble((c.name, "bold"), f" · {c.owner} · {c.sent}/{c.total} sent · {c.failed} failed",
                         f" · {c.pending} pending · {c.cancelled} cancelled")
    if c.scheduled_at and c.status == "pending":
        text.append(f"\nscheduled for {local_time(c.scheduled_at, tz, '%Y-%m-%d %H:%M')} {tz}")
    if c.pause_reason:
        text.append(f"\npaused: {c.pause_reason}", style="yellow")
        if c.pause_message:
            text.append(f" — {c.pause_message}")
    return text


# --- users ----------------------------------------------------------------------------------

def user_columns() -> list[Column]:
    return [Column("username", "User", 16), Column("quota", "Quota left", 10),
            Column("running", "Running", 7), Column("share", "Share of recent sends", 21)]


def user_row(u: UserView) -> Row:
    share = bar(u.share_recent, 15, "cyan") + Text(" " + percent(u.share_recent))
    quota = Text(count(u.quota_remaining).rjust(10), style="red" if u.quota_remaining == 0 else "")
    return u.id, (clip(u.username, 16), quota, str(u.running_campaigns).rjust(7), share)


def user_rows(o: Overview) -> list[Row]:
    return [user_row(u) for u in o.users]


# --- events ---------------------------------------------------------------------------------

def event_columns(width: int) -> list[Column]:
    # 3 columns of 2 cells padding plus a 1-cell scrollbar.
    return [Column("at", "Time", 8), Column("kind", "Event", 24), Column("message", "Message", max(20, width - 39))]


def event_style(kind: str) -> str:
    if kind in ("service.frozen", "campaign.failed", "alert") or kind.endswith("failed"):
        return "bold red"
    if kind in ("service.unfrozen", "campaign.completed", "campaign.resumed", "service.enabled", "service.reset"):
        return "green"
    if kind in ("campaign.paused", "service.throttled", "service.disabled", "campaign.cancelled"):
        return "yellow"
    return "grey70" if kind.endswith(("progress", "quota_used", "interval_started", "interval_ended")) else ""


def event_matches(e: LiveEvent, needle: str) -> bool:
    needle = needle.strip().lower()
    return not needle or needle in e.kind.lower() or needle in e.message.lower()


def event_rows(events: Iterable[LiveEvent], needle: str, tz: str, limit: int = 300) -> list[Row]:
    """Newest first: `events` arrives oldest first."""
    rows: list[Row] = []
    for e in reversed(list(events)):
        if event_matches(e, needle):
            # The time is a Text of its own per row: KeyedTable.push_front orders rows by that object.
            rows.append((e.id or f"{e.at}-{len(rows)}",
                         (Text(local_time(e.at, tz, "%H:%M:%S")), Text(e.kind, style=event_style(e.kind)), e.message)))
            if len(rows) >= limit:
                break
    return rows
