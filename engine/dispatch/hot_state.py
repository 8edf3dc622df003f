"""The engine's in-memory hot state: services, users and campaigns, each a cache of PostgreSQL."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from engine.domain.quota_day import next_reset
from engine.domain.quota_units import shortfall
from engine.domain.request_order import InRequestOrder
from engine.domain.send_window import SendWindow
from engine.providers.base import Provider

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(slots=True)
class ServiceState:
    id: uuid.UUID
    name: str
    provider_kind: str
    domain: str
    daily_quota: int
    reset_time: time
    send_interval: int
    enabled: bool
    used_today: int
    remaining_today: int
    quota_day_start: datetime
    next_reset: datetime
    last_request_at: datetime | None
    consecutive_failures: int
    throttled_until: datetime | None
    abnormal_frozen: bool
    abnormal_reason: str | None
    # Failures in a row that freeze it abnormally; None = the engine's default.
    freeze_after: int | None = None
    # Seconds the provider has to answer one request (once it has its connection).
    request_timeout: int = 30
    provider: Provider | None = None
    # Bumped whenever the service's heap entry is replaced; older entries are stale.
    heap_gen: int = 0
    in_heap: bool = False
    # Bound, not yet handed to the provider: re-armed when the request really starts.
    preparing: bool = False
    # Requests handed to the provider and not yet answered; at the engine's bound, the service
    # waits (`slot_wait`) for one to come back before its next request.
    in_flight: int = 0
    # The last request's start on the clock's monotonic scale (None until this process sends):
    # intervals run on it; `last_request_at` (wall time) is what is persisted and shown.
    last_start_mono: float | None = None
    slot_wait: bool = False
    # (outcome, error) of its requests, released in request order for the failure streak.
    results: InRequestOrder[tuple[str, str | None]] = field(default_factory=InRequestOrder)
    # Reached its reset instant: out of the dispatch heap until the reset task has run.
    awaiting_reset: bool = False
    # (consecutive_failures, throttled_until) as last written through to the database.
    written_live: tuple[int, datetime | None] = (0, None)
    # The quota day whose exhaustion was announced (`service.quota_used`): once per day, even when a
    # throttled request gives a unit back and the service runs out again.
    announced_used: datetime | None = None
    # Waiting for room under the engine-wide per-minute cap (in the dispatcher's cap queue).
    cap_wait: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any], tz: ZoneInfo, now: datetime) -> "ServiceState":
        s = cls(id=row["id"], name=row["name"], provider_kind=row["provider"], domain=row["domain"],
                daily_quota=row["daily_quota"], reset_time=row["reset_time"], send_interval=row["send_interval"],
                enabled=row["enabled"], used_today=row["used_today"], remaining_today=row["remaining_today"],
                quota_day_start=row["quota_day_start"], next_reset=EPOCH, last_request_at=row["last_request_at"],
                consecutive_failures=row["consecutive_failures"], throttled_until=row["throttled_until"],
                abnormal_frozen=row["abnormal_frozen"], abnormal_reason=row["abnormal_reason"],
                freeze_after=row.get("freeze_after"), request_timeout=row.get("request_timeout", 30))
        s.written_live = (s.consecutive_failures, s.throttled_until)
        s.reschedule(tz, now)
        return s

    def reschedule(self, tz: ZoneInfo, now: datetime) -> None:
        """The next reset: the first reset instant after the stored quota day start.

        If that instant has already passed (the engine was down, or the reset time changed),
        the reset is due at once.
        """
        self.next_reset = next_reset(self.reset_time, tz, max(self.quota_day_start, now - timedelta(days=3)))

    @property
    def usable(self) -> bool:
        return self.enabled and not self.abnormal_frozen

    @property
    def dispatchable(self) -> bool:
        return self.usable and self.remaining_today > 0 and not self.awaiting_reset

    def ready_mono(self, wall: datetime, mono: float) -> float:
        """`ready_at` on the monotonic scale, given one reading of both clocks: from the last
        request's monotonic start when this process made it, else from the stored wall time."""
        at = float("-inf")
        if self.last_start_mono is not None:
            at = self.last_start_mono + self.send_interval
        elif self.last_request_at is not None:
            at = mono + (self.last_request_at - wall).total_seconds() + self.send_interval
        if self.throttled_until is not None:
            at = max(at, mono + (self.throttled_until - wall).total_seconds())
        return at

    def ready_at(self) -> datetime:
        """When the interval (measured from the previous request's start) and any throttle end."""
        at = EPOCH
        if self.last_request_at is not None:
            at = self.last_request_at + timedelta(seconds=self.send_interval)
        if self.throttled_until is not None and self.throttled_until > at:
            at = self.throttled_until
        return at


@dataclass(slots=True)
class Claimed:
    """A subtask held in a campaign's in-memory buffer (still `pending` in the database).

    Tens of thousands are held at once, so the record is kept small: slots, ids as the driver
    gives them (not converted), one template id object per claim (claims.py), and no fields
    dict for a contact without custom fields.
    """

    id: uuid.UUID
    seq: int
    email: str
    template_id: uuid.UUID
    name: str
    # The contact's custom fields; None when it has none.
    fields: dict[str, Any] | None
    # Which attempt of the subtask this is (a retry of a failure is the next): its request id.
    attempt: int = 1


@dataclass(slots=True)
class CampaignState:
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    pause_reason: str | None
    sender_name: str
    total: int
    reserved: int
    created_at: datetime
    # Carried by live events so the dashboard and scripts can label and filter them.
    name: str = ""
    buffer: deque[Claimed] = field(default_factory=deque)
    # Largest seq claimed so far: the next claim starts after it.
    cursor: int = 0
    # The database had nothing pending beyond `cursor` at the last claim.
    exhausted: bool = False
    refilling: bool = False
    # Taken from the buffer since the last claim, and the size of that claim.
    taken: int = 0
    claim_size: int = 0
    in_flight: int = 0
    # Compiled templates by id (the loader's CampaignTemplates: compiled on first use).
    templates: Mapping[uuid.UUID, Any] = field(default_factory=dict)
    # Its send window, and whether it is closed as of the dispatcher's last tick (send_windows.py).
    window: SendWindow | None = None
    window_closed: bool = False
    # Units given back for subtasks never offered to a provider (they still count in `total`).
    released: int = 0
    # Claimed subtasks whose recipient domain group was at its limit, per group (domain_gate.py):
    # still claimed work, served as soon as their group is free again.
    parked: dict[str, deque[Claimed]] = field(default_factory=dict)
    parked_n: int = 0
    # Announced as waiting only for its recipients' domain limits (cleared by its next send).
    domain_wait: bool = False
    # `created_at` as a POSIX timestamp: the fairness tie-break reads it on every pick.
    created_ts: float = field(init=False)

    def __post_init__(self) -> None:
        self.created_ts = self.created_at.timestamp()

    @property
    def shortfall(self) -> int:
        """Subtasks not covered by the owner's quota (the extra the start could not charge)."""
        return shortfall(self.total, self.reserved, self.released)

    @property
    def runnable(self) -> bool:
        return self.status == "running" and (bool(self.buffer) or self.parked_n > 0) and not self.window_closed

    @property
    def has_pending(self) -> bool:
        return bool(self.buffer) or self.parked_n > 0 or not self.exhausted


@dataclass(slots=True)
class UserState:
    id: uuid.UUID
    # Users mapped to the same services share one set (HotState.set_mapping): a hundred thousand
    # users on a few thousand services hold a few thousand sets, not one each.
    services: frozenset[uuid.UUID] = frozenset()
    # Active campaigns in creation order (a tuple: most users have none, and it changes rarely).
    campaigns: tuple[uuid.UUID, ...] = ()
    last_served: int = 0
    last_campaign: uuid.UUID | None = None


class HotState:
    """All hot state with the indexes dispatch needs."""

    def __init__(self) -> None:
        self.services: dict[uuid.UUID, ServiceState] = {}
        self.users: dict[uuid.UUID, UserState] = {}
        self.campaigns: dict[uuid.UUID, CampaignState] = {}
        # service -> users mapped to it
        self.service_users: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.serve_counter = 0
        # One frozenset per distinct mapping (the users' `services`), kept for the state's life.
        self._mappings: dict[frozenset[uuid.UUID], frozenset[uuid.UUID]] = {}

    def service_name(self, service_id: uuid.UUID) -> str | None:
        s = self.services.get(service_id)
        return s.name if s is not None else None

    def campaign_name(self, campaign_id: uuid.UUID) -> str | None:
        c = self.campaigns.get(campaign_id)
        return c.name if c is not None else None

    def user(self, user_id: uuid.UUID) -> UserState:
        u = self.users.get(user_id)
        if u is None:
            u = self.users[user_id] = UserState(user_id)
        return u

    def set_mapping(self, user_id: uuid.UUID, services: Iterable[uuid.UUID]) -> None:
        u = self.user(user_id)
        fresh = frozenset(services)
        for sid in u.services - fresh:
            self.service_users.get(sid, set()).discard(user_id)
        for sid in fresh:
            self.service_users.setdefault(sid, set()).add(user_id)
        u.services = self._mappings.setdefault(fresh, fresh)

    def add_campaign(self, c: CampaignState) -> None:
        self.campaigns[c.id] = c
        u = self.user(c.user_id)
        if c.id not in u.campaigns:
            u.campaigns = tuple(sorted((*u.campaigns, c.id),
                                       key=lambda cid: (self.campaigns[cid].created_at, cid.int)))

    def drop_campaign(self, campaign_id: uuid.UUID) -> CampaignState | None:
        c = self.campaigns.pop(campaign_id, None)
        if c is not None:
            u = self.users.get(c.user_id)
            if u is not None and campaign_id in u.campaigns:
                u.campaigns = tuple(cid for cid in u.campaigns if cid != campaign_id)
        return c

    def user_services(self, user_id: uuid.UUID) -> list[ServiceState]:
        u = self.users.get(user_id)
        if u is None:
            return []
        return [self.services[s] for s in u.services if s in self.services]

    def has_runnable(self, u: UserState) -> bool:
        campaigns = self.campaigns
        for cid in u.campaigns:  # a loop, not any(): this runs on every pick
            c = campaigns[cid]
            if c.status == "running" and (c.buffer or c.parked_n) and not c.window_closed:
                return True
        return False

    def runnable_campaigns(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        u = self.users.get(user_id)
        if u is None:
            return set()
        return {cid for cid in u.campaigns if self.campaigns[cid].runnable}
