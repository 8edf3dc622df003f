"""Fairness (DESIGN.md section 3): which user a freed service serves, and which of that user's
campaigns goes next."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Candidate:
    """A user with runnable work on a freed service."""

    user_id: uuid.UUID
    # Order of the user's latest service by any service (0 = never); smaller = longer ago.
    last_served: int
    # Tie-break among never-served users: the oldest active campaign goes first.
    first_campaign_at: float


def pick_user(candidates: Iterable[Candidate]) -> uuid.UUID | None:
    """The user served least recently by any service (ties: oldest campaign, then id)."""
    best = min(candidates, key=lambda c: (c.last_served, c.first_campaign_at, c.user_id.int), default=None)
    return best.user_id if best is not None else None


def pick_campaign(campaigns: Sequence[uuid.UUID], runnable: set[uuid.UUID],
                  last: uuid.UUID | None) -> uuid.UUID | None:
    """Campaigns (in creation order) take turns: the next runnable one after `last`, wrapping."""
    if not campaigns:
        return None
    start = 0
    if last is not None and last in campaigns:
        start = campaigns.index(last) + 1
    n = len(campaigns)
    for k in range(n):
        cid = campaigns[(start + k) % n]
        if cid in runnable:
            return cid
    return None
