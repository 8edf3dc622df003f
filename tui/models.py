"""msgspec Structs mirroring the live-operations API contract (what the dashboard reads)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")
ServiceState = Literal["ready", "interval", "frozen", "disabled", "exhausted", "throttled"]


class ServiceView(msgspec.Struct, frozen=True):
    """One sending service as the overview shows it."""

    id: str
    name: str
    provider: str = ""
    enabled: bool = True
    state: str = "ready"
    interval_remaining: float = 0.0
    send_interval: int = 0
    used_today: int = 0
    remaining_today: int = 0
    daily_quota: int = 0
    reset_time: str = ""
    next_reset_at: str | None = None
    consecutive_failures: int = 0
    abnormal_reason: str | None = None
    sends_per_minute: list[int] = msgspec.field(default_factory=list)


class CampaignView(msgspec.Struct, frozen=True):
    """One campaign as the overview shows it."""

    id: str
    name: str
    owner: str = ""
    owner_id: str = ""
    status: str = "pending"
    pause_reason: str | None = None
    pause_message: str | None = None
    total: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0
    progress: float = 0.0
    rate_per_minute: float = 0.0
    eta_seconds: float | None = None
    scheduled_at: str | None = None
    created_at: str | None = None


class UserView(msgspec.Struct, frozen=True):
    """One account's quota and activity."""

    id: str
    username: str
    quota_remaining: int = 0
    running_campaigns: int = 0
    share_recent: float = 0.0


class Totals(msgspec.Struct, frozen=True):
    """Headline counters."""

    services: int = 0
    ready: int = 0
    frozen: int = 0
    exhausted: int = 0
    running_campaigns: int = 0
    sent_last_minute: int = 0
    pending: int = 0


class Overview(msgspec.Struct, frozen=True):
    """One snapshot of GET /monitor/overview."""

    now: str
    business_tz: str = "UTC"
    services: list[ServiceView] = msgspec.field(default_factory=list)
    campaigns: list[CampaignView] = msgspec.field(default_factory=list)
    users: list[UserView] = msgspec.field(default_factory=list)
    totals: Totals = msgspec.field(default_factory=Totals)
    # How many each list has in the whole snapshot (the lists above are its first page).
    services_total: int = 0
    campaigns_total: int = 0
    users_total: int = 0


class LiveEvent(msgspec.Struct, frozen=True):
    """One Server-Sent Event's data, plus the stream id it arrived with."""

    kind: str
    at: str
    message: str = ""
    user_id: str | None = None
    campaign_id: str | None = None
    service_id: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str = ""


class Me(msgspec.Struct, frozen=True):
    """The logged-in account (GET /me)."""

    id: str
    username: str
    role: str = "user"
    quota_remaining: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Envelope(msgspec.Struct, frozen=True):
    """The response envelope; data stays raw until the caller knows its type."""

    success: bool
    data: msgspec.Raw = msgspec.Raw(b"null")
    message: str = ""
    error: dict[str, Any] | None = None


# --- drill-down and admin payloads (only the fields the dashboard reads) -------------------------

class CampaignEventRow(msgspec.Struct, frozen=True):
    """One row of GET /campaigns/{id}/events."""

    kind: str
    message: str = ""
    created_at: str = ""
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class SubtaskRow(msgspec.Struct, frozen=True):
    """One row of GET /campaigns/{id}/subtasks."""

    email: str
    status: str
    seq: int = 0
    service_id: str | None = None
    attempted_at: str | None = None
    error: str | None = None


class ServiceInfo(msgspec.Struct, frozen=True):
    """GET /services/{id}: configuration and live columns (secrets arrive masked)."""

    id: str
    name: str
    provider: str = ""
    domain: str = ""
    credentials: dict[str, Any] = msgspec.field(default_factory=dict)
    base_url: str | None = None
    last_request_at: str | None = None
    throttled_until: str | None = None
    warmup_day: int | None = None  # the day of its warm-up ramp; None when it has none or it finished
    warmup_quota: int | None = None
    # Timed unfreeze of an engine freeze (None: an administrator unfreezes it), the probe asked
    # for first, and when the freeze in force comes due.
    unfreeze_after: int | None = None
    probe_before_unfreeze: bool = False
    frozen_until: str | None = None


class StatusEntryRow(msgspec.Struct, frozen=True):
    """One row of GET /services/{id}/status-log."""

    kind: str
    message: str = ""
    created_at: str = ""


class QuotaEntryRow(msgspec.Struct, frozen=True):
    """One row of a user's quota ledger."""

    delta: int
    balance_after: int
    kind: str = ""
    reason: str = ""
    created_at: str = ""


class ServiceBrief(msgspec.Struct, frozen=True):
    id: str
    name: str


class UserServices(msgspec.Struct, frozen=True):
    """GET /users/{id}/services: the ids a user may send through."""

    user_id: str
    service_ids: list[str] = msgspec.field(default_factory=list)
    services: list[ServiceBrief] = msgspec.field(default_factory=list)


class Page(msgspec.Struct, Generic[T], frozen=True):
    items: list[T]
    total: int = 0
