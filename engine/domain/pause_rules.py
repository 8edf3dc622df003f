"""Pause reasons, their one message table, and the routing checks that pause and resume
campaigns (DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Protocol

PauseReason = Literal["USER", "NO_USER_QUOTA", "NO_AVAILABLE_SERVICE", "SERVICE_QUOTA_EXHAUSTED",
                      "OUTSIDE_SEND_WINDOW"]
AutoReason = Literal["NO_USER_QUOTA", "NO_AVAILABLE_SERVICE", "SERVICE_QUOTA_EXHAUSTED", "OUTSIDE_SEND_WINDOW"]

# The one table of pause messages: events, the API and the dashboard all read it.
MESSAGES: dict[str, str] = {
    "USER": "已手动暂停",
    "NO_USER_QUOTA": "当前没有发信额度",
    "NO_AVAILABLE_SERVICE": "当前没有可用发信服务",
    "SERVICE_QUOTA_EXHAUSTED": "当前可用的发信服务额度已用完，请等待第二天恢复",
    "OUTSIDE_SEND_WINDOW": "当前不在允许的发送时段，时段开始后自动恢复",
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


def pause_message(reason: str | None) -> str | None:
    """The operator-facing text of a pause reason (None for no reason)."""
    return MESSAGES.get(reason) if reason else None
