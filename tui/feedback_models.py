"""The deliverability payloads the detail screens and the alerts screen read (funnel, reputation,
alerts with their deliveries)."""

from __future__ import annotations

from typing import Any

import msgspec


class Funnel(msgspec.Struct, frozen=True):
    """GET /campaigns/{id}/funnel: unique per recipient; `rates` are shares of `sent`."""

    total: int = 0
    sent: int = 0
    failed: int = 0
    suppressed_at_start: int = 0
    attempts: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    hard_bounced: int = 0
    soft_bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    rates: dict[str, float] = msgspec.field(default_factory=dict)


class Thresholds(msgspec.Struct, frozen=True):
    hard_bounce_rate: float = 0.0
    complaint_rate: float = 0.0
    min_sends: int = 0


class Reputation(msgspec.Struct, frozen=True):
    """GET /services/{id}/reputation: rates over the guard's window of the service's last sends."""

    window: int = 0
    sends: int = 0
    hard_bounced: int = 0
    complained: int = 0
    hard_bounce_rate: float = 0.0
    complaint_rate: float = 0.0
    thresholds: Thresholds = msgspec.field(default_factory=Thresholds)


class AlertDelivery(msgspec.Struct, frozen=True):
    """One channel's delivery of an alert."""

    channel: str
    state: str
    attempts: int = 0
    last_error: str | None = None
    delivered_at: str | None = None
    next_attempt_at: str | None = None


class AlertRow(msgspec.Struct, frozen=True):
    """One row of GET /alerts: the rule's condition (kind, subject), open or cleared, and its deliveries."""

    id: str
    rule: str
    kind: str
    subject: str
    message: str
    opened_at: str
    cleared_at: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    deliveries: list[AlertDelivery] = msgspec.field(default_factory=list)
