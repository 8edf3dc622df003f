"""Per-user campaign limits (the seeds' MAX_CONCURRENT_CAMPAIGNS): pure rules."""

from __future__ import annotations

# A campaign is active while it is running or paused by the system (it resumes by itself);
# a campaign paused by a person holds no slot until it is resumed.
ACTIVE_STATUSES = ("running", "paused")


def is_active(status: str, pause_reason: str | None) -> bool:
    return status in ACTIVE_STATUSES and pause_reason != "USER"


def may_activate(active_others: int, cap: int) -> bool:
    """Whether one more campaign may become active next to `active_others` (cap 0 = no cap)."""
    return cap <= 0 or active_others < cap
