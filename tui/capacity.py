"""What a campaign's services can still send today: the quota-aware ETA (pure)."""

from __future__ import annotations

from typing import Iterable, NamedTuple

from tui.format import parse_iso
from tui.models import CampaignView, ServiceView

# Services that can send again today without an operator; frozen and disabled ones cannot.
USABLE = ("ready", "interval", "throttled")


class Capacity(NamedTuple):
    remaining: int  # sends left today over the services counted
    next_reset: str | None  # the earliest next reset among them (ISO instant)
    known: bool  # False when the user's mapping is unknown and the whole fleet was counted


class Eta(NamedTuple):
    seconds: float | None  # by rate, when the campaign can finish today
    waits_until: str | None  # ISO instant of the reset it waits for, when it cannot


def capacity(services: Iterable[ServiceView], mapped: frozenset[str] | None) -> Capacity:
    """Sends left today over `mapped` services (every service when the mapping is unknown)."""
    chosen = [s for s in services if (mapped is None or s.id in mapped)]
    usable = [s for s in chosen if s.enabled and s.state in USABLE]
    resets = [s.next_reset_at for s in chosen if s.enabled and s.state != "frozen" and s.next_reset_at]
    first = min(resets, key=lambda r: parse_iso(r) or 0, default=None)  # type: ignore[arg-type, return-value]
    return Capacity(sum(max(0, s.remaining_today) for s in usable), first, mapped is not None)


def campaign_eta(c: CampaignView, cap: Capacity | None) -> Eta:
    """The ETA by rate, unless the pending work exceeds what the campaign's services can send today."""
    if c.status not in ("running", "paused"):
        return Eta(None, None)
    waiting = c.status == "paused" and c.pause_reason == "SERVICE_QUOTA_EXHAUSTED"
    if cap is not None and cap.next_reset and (waiting or c.pending > cap.remaining):
        return Eta(None, cap.next_reset)
    return Eta(c.eta_seconds if c.status == "running" else None, None)
