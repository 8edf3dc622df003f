"""Alert rules: which conditions fire, for which subject, from a snapshot of the product's state.

Pure functions. A rule fires per subject (`service:<id>`, `campaign:<id>`, `user:<id>`,
`event_stream`); an alert opens when a subject starts firing and clears when it stops, so one
condition gives one alert however often it is evaluated (`reconcile`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from uuid import UUID

RuleKind = Literal["service_frozen", "service_quota_used", "service_quota_exhausted", "campaign_paused",
                   "user_quota_low", "leadership_changed", "event_stream_dropping"]
RULE_KINDS: tuple[str, ...] = get_args(RuleKind)

# Per kind: what the threshold means, its bounds, and its default (None = the kind takes none).
THRESHOLDS: dict[str, tuple[str, int, int, int] | None] = {
    "service_frozen": None,
    "service_quota_used": ("percent of the daily quota used", 1, 100, 80),
    "service_quota_exhausted": None,
    "campaign_paused": ("minutes paused by the system", 0, 10_080, 30),
    "user_quota_low": ("quota units left", 1, 1_000_000_000, 1000),
    "leadership_changed": None,
    "event_stream_dropping": ("events dropped since the previous check", 1, 1_000_000, 1),
}


def threshold_error(kind: str, threshold: int | None) -> str | None:
    """Why `threshold` does not suit `kind` (None = it does; a missing one takes the default)."""
    spec = THRESHOLDS.get(kind)
    if spec is None:
        return None if threshold is None else f"a {kind} rule takes no threshold"
    what, low, high, _ = spec
    if threshold is not None and not low <= threshold <= high:
        return f"threshold ({what}) must be between {low} and {high}"
    return None


def effective_threshold(kind: str, threshold: int | None) -> int | None:
    spec = THRESHOLDS.get(kind)
    if spec is None:
        return None
    return spec[3] if threshold is None else threshold


@dataclass(frozen=True)
class ServiceFacts:
    id: UUID
    name: str
    enabled: bool
    abnormal_frozen: bool
    abnormal_reason: str | None
    daily_quota: int
    used_today: int
    remaining_today: int


@dataclass(frozen=True)
class PausedCampaign:
    id: UUID
    name: str
    user_id: UUID
    reason: str  # a routing pause reason (never USER)
    paused_since: datetime


@dataclass(frozen=True)
class UserFacts:
    id: UUID
    username: str
    quota_remaining: int


@dataclass(frozen=True)
class Snapshot:
    """What the rules look at, read in one go."""

    now: datetime
    services: list[ServiceFacts] = field(default_factory=list)
    paused: list[PausedCampaign] = field(default_factory=list)
    # Users with a pending, running or paused campaign (a quota nobody is spending is no news).
    users: list[UserFacts] = field(default_factory=list)
    # Events the live-stream publisher dropped since the previous snapshot (None = no publisher).
    events_dropped: int | None = None


@dataclass(frozen=True)
class Condition:
    subject: str
    message: str
    data: dict[str, Any]


def firing(kind: str, threshold: int | None, snap: Snapshot) -> dict[str, Condition]:
    """The subjects for which a rule of `kind` fires now, keyed by subject."""
    t = effective_threshold(kind, threshold)
    out: list[Condition] = []
    if kind == "service_frozen":
        out = [Condition(f"service:{s.id}", f"service {s.name} is frozen: {s.abnormal_reason or 'abnormal'}",
                         {"service_id": str(s.id), "service": s.name, "reason": s.abnormal_reason})
               for s in snap.services if s.abnormal_frozen]
    elif kind == "service_quota_used":
        assert t is not None
        out = [Condition(f"service:{s.id}",
                         f"service {s.name} used {s.used_today} of its daily quota {s.daily_quota} (≥ {t} %)",
                         {"service_id": str(s.id), "service": s.name, "used_today": s.used_today,
                          "daily_quota": s.daily_quota, "threshold_percent": t})
               for s in snap.services if s.enabled and s.used_today * 100 >= t * s.daily_quota]
    elif kind == "service_quota_exhausted":
        out = [Condition(f"service:{s.id}", f"service {s.name} has no quota left today",
                         {"service_id": str(s.id), "service": s.name, "daily_quota": s.daily_quota})
               for s in snap.services if s.enabled and s.remaining_today <= 0]
    elif kind == "campaign_paused":
        assert t is not None
        limit = snap.now - timedelta(minutes=t)
        out = [Condition(f"campaign:{c.id}", f"campaign {c.name} paused by the system ({c.reason}) "
                                             f"for more than {t} min",
                         {"campaign_id": str(c.id), "campaign": c.name, "user_id": str(c.user_id),
                          "reason": c.reason, "paused_since": c.paused_since.isoformat(), "threshold_minutes": t})
               for c in snap.paused if c.paused_since <= limit]
    elif kind == "user_quota_low":
        assert t is not None
        out = [Condition(f"user:{u.id}", f"user {u.username} has {u.quota_remaining} quota left (< {t})",
                         {"user_id": str(u.id), "username": u.username, "quota_remaining": u.quota_remaining,
                          "threshold": t})
               for u in snap.users if u.quota_remaining < t]
    elif kind == "event_stream_dropping":
        assert t is not None
        if snap.events_dropped is not None and snap.events_dropped >= t:
            out = [Condition("event_stream", f"the live event stream dropped {snap.events_dropped} event(s)",
                             {"dropped": snap.events_dropped, "threshold": t})]
    # leadership_changed is an event, not a state: it is raised where leadership is taken.
    return {c.subject: c for c in out}


def reconcile(open_subjects: set[str], now_firing: dict[str, Condition]) -> tuple[list[Condition], set[str]]:
    """(conditions to open, subjects to clear): a subject already open is never opened again."""
    to_open = [c for s, c in sorted(now_firing.items()) if s not in open_subjects]
    return to_open, open_subjects - now_firing.keys()
