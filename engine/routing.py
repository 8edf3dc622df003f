"""Pure routing rules (DESIGN.md section 3): pause reasons, pause transitions and fairness."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterable, Literal, Protocol, Sequence

PauseReason = Literal["USER", "NO_USER_QUOTA", "NO_AVAILABLE_SERVICE", "SERVICE_QUOTA_EXHAUSTED"]
AutoReason = Literal["NO_USER_QUOTA", "NO_AVAILABLE_SERVICE", "SERVICE_QUOTA_EXHAUSTED"]

MESSAGES: dict[str, str] = {
    "USER": "已手动暂停",
    "NO_USER_QUOTA": "当前没有发信额度",
    "NO_AVAILABLE_SERVICE": "当前没有可用发信服务",
    "SERVICE_QUOTA_EXHAUSTED": "当前可用的发信服务额度已用完，请等待第二天恢复",
}


class ServiceLike(Protocol):
    enabled: bool
    abnormal_frozen: bool
    remaining_today: int


def routing_reason(shortfall: int, services: Iterable[ServiceLike]) -> AutoReason | None:
    """Checks 1-3 for a running campaign with pending work; None = it may run (check 4 only waits)."""
    if shortfall > 0:
        return "NO_USER_QUOTA"
    usable = [s for s in services if s.enabled and not s.abnormal_frozen]
    if not usable:
        return "NO_AVAILABLE_SERVICE"
    if not any(s.remaining_today > 0 for s in usable):
        return "SERVICE_QUOTA_EXHAUSTED"
    return None


@dataclass(frozen=True)
class PauseChange:
    status: Literal["running", "paused"]
    reason: AutoReason | None


def pause_change(status: str, pause_reason: str | None, auto: AutoReason | None) -> PauseChange | None:
    """What the routing checks do to a campaign; None = leave it. A USER pause is never touched."""
    if status == "running":
        return PauseChange("paused", auto) if auto is not None else None
    if status != "paused" or pause_reason == "USER":
        return None
    if auto is None:
        return PauseChange("running", None)
    return PauseChange("paused", auto) if auto != pause_reason else None


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
