"""The fleet's sends per minute over the last hour, pieced together from overview snapshots (pure).

Each snapshot carries every service's last ten minutes; the dashboard keeps the per-minute totals
it has seen, so the hour fills in as it runs (the newest snapshot wins for a minute it repeats).
"""

from __future__ import annotations

from tui.format import parse_iso
from tui.models import Overview

HOUR = 60


def minute_of(snapshot: Overview) -> int | None:
    now = parse_iso(snapshot.now)
    return int(now.timestamp() // 60) if now else None


def merge(history: dict[int, int], snapshot: Overview, keep: int = HOUR) -> dict[int, int]:
    """`history` (minute number → sends) with the snapshot's ten minutes folded in."""
    now = minute_of(snapshot)
    if now is None or not snapshot.services:
        return history
    length = max(len(s.sends_per_minute) for s in snapshot.services)
    merged = dict(history)
    for back in range(length):
        merged[now - back] = sum(s.sends_per_minute[-1 - back] for s in snapshot.services
                                 if len(s.sends_per_minute) > back)
    return {m: v for m, v in merged.items() if m > now - keep}


def series(history: dict[int, int]) -> list[int]:
    """Oldest to newest, from the first minute seen; a gap (the dashboard was away) counts as 0."""
    if not history:
        return []
    first, last = min(history), max(history)
    return [history.get(m, 0) for m in range(first, last + 1)]
