"""The event log: columns, styles, the filter and which kinds are noise unless asked for."""

from __future__ import annotations

from typing import Iterable, Mapping

from rich.text import Text

from tui.format import local_time
from tui.layout import Column, Row
from tui.models import LiveEvent

# Frequent, low-value kinds: shown only with the `v` toggle (progress belongs in the campaigns table).
CHATTY = ("campaign.progress", "service.quota_used", "service.interval_started", "service.interval_ended")


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


def event_names(e: LiveEvent, usernames: Mapping[str, str] | None = None) -> list[str]:
    """Names the event carries (campaign, service) and its owner's username when the snapshot knows
    it, so a filter by any of those names finds it."""
    names = [str(e.data[k]) for k in ("campaign", "service") if e.data.get(k)]
    owner = e.user_id or e.data.get("user_id")
    if usernames and owner and owner in usernames:
        names.append(usernames[owner])
    return names


def event_matches(e: LiveEvent, needle: str, chatty: bool = True, usernames: Mapping[str, str] | None = None) -> bool:
    if not chatty and e.kind.startswith(CHATTY):
        return False
    words = needle.lower().split()
    hay = " ".join([e.kind, e.message, *event_names(e, usernames)]).lower()
    return all(w in hay for w in words)


def event_rows(events: Iterable[LiveEvent], needle: str, tz: str, limit: int = 300, chatty: bool = True,
               usernames: Mapping[str, str] | None = None) -> list[Row]:
    """Newest first: `events` arrives oldest first."""
    rows: list[Row] = []
    for e in reversed(list(events)):
        if event_matches(e, needle, chatty, usernames):
            # The time is a Text of its own per row: KeyedTable.push_front orders rows by that object.
            rows.append((e.id or f"{e.at}-{len(rows)}",
                         (Text(local_time(e.at, tz, "%H:%M:%S")), Text(e.kind, style=event_style(e.kind)), e.message)))
            if len(rows) >= limit:
                break
    return rows
