"""Per-recipient-domain limits: groups of domains (`qq.com`, `163.com|126.com`), at most N
requests per minute and per quota day, across all services or per service, and the pick rule
that skips a subtask whose domain is at its limit for the next one (never blocking a campaign).

Pure and in memory; the counts are rebuilt from subtasks (recipient domain, service, attempt
time) like the daily quota. The dispatcher applies them in its pick (engine/dispatch/domain_gate.py).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from itertools import islice
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
MINUTE = timedelta(minutes=1)


def business_day(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the business-calendar day holding `now`: the day per-day domain
    limits count in (one day for every service, whatever their own reset times)."""
    local = now.astimezone(tz).date()
    return (datetime.combine(local, time(0), tz).astimezone(timezone.utc),
            datetime.combine(local + timedelta(days=1), time(0), tz).astimezone(timezone.utc))


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


@dataclass(frozen=True)
class DomainGroup:
    name: str
    domains: frozenset[str]
    per_minute: int | None = None
    per_day: int | None = None
    # True: each service counts on its own; False: one count across all services.
    per_service: bool = False

    @classmethod
    def parse(cls, name: str, pattern: str, **limits: int | bool | None) -> "DomainGroup":
        """`"163.com|126.com"` → a group of those domains."""
        domains = frozenset(d.strip().lower() for d in pattern.split("|") if d.strip())
        return cls(name, domains, **limits)  # type: ignore[arg-type]


class DomainGroups:
    """Which group a recipient domain belongs to (first group listing it wins)."""

    def __init__(self, groups: Iterable[DomainGroup]):
        self.groups = list(groups)
        self._by_domain: dict[str, DomainGroup] = {}
        self.by_name = {g.name: g for g in self.groups}
        for g in self.groups:
            for d in g.domains:
                self._by_domain.setdefault(d, g)

    def group_of(self, email: str) -> DomainGroup | None:
        return self._by_domain.get(domain_of(email))

    def group_of_domain(self, domain: str) -> DomainGroup | None:
        return self._by_domain.get(domain)

    def __bool__(self) -> bool:
        return bool(self.groups)


class DomainCounter:
    """Requests per (group, service or None) in the last minute and in the current quota day."""

    def __init__(self) -> None:
        self._minute: dict[tuple[str, uuid.UUID | None], deque[datetime]] = {}
        self._day: dict[tuple[str, uuid.UUID | None], tuple[datetime, int]] = {}

    @staticmethod
    def _key(g: DomainGroup, service_id: uuid.UUID) -> tuple[str, uuid.UUID | None]:
        return (g.name, service_id if g.per_service else None)

    def allowed(self, g: DomainGroup, service_id: uuid.UUID, now: datetime, day_start: datetime) -> bool:
        key = self._key(g, service_id)
        if g.per_minute is not None:
            recent = self._minute.get(key)
            if recent is not None:
                while recent and recent[0] <= now - MINUTE:
                    recent.popleft()
                if len(recent) >= g.per_minute:
                    return False
        if g.per_day is not None:
            start, n = self._day.get(key, (day_start, 0))
            if start == day_start and n >= g.per_day:
                return False
        return True

    def record(self, g: DomainGroup, service_id: uuid.UUID, at: datetime, day_start: datetime, n: int = 1) -> None:
        if g.per_minute is not None:  # only a per-minute limit needs the times (and prunes them)
            self._minute.setdefault(self._key(g, service_id), deque()).append(at)
        self.add_day(g, service_id, day_start, n)

    def add_day(self, g: DomainGroup, service_id: uuid.UUID, day_start: datetime, n: int) -> None:
        key = self._key(g, service_id)
        start, had = self._day.get(key, (day_start, 0))
        self._day[key] = (day_start, had + n if start == day_start else n)

    def add_recent(self, g: DomainGroup, service_id: uuid.UUID, times: Iterable[datetime]) -> None:
        """Request times of the last minute (a rebuild): kept in order."""
        if g.per_minute is None:
            return
        q = self._minute.setdefault(self._key(g, service_id), deque())
        q.extend(times)
        if len(q) > 1:
            self._minute[self._key(g, service_id)] = deque(sorted(q))

    def give_back(self, g: DomainGroup, service_id: uuid.UUID, at: datetime, day_start: datetime) -> None:
        """A request counted at `at` that did not count after all (throttled, or never made)."""
        key = self._key(g, service_id)
        recent = self._minute.get(key)
        if recent is not None:
            try:
                recent.remove(at)
            except ValueError:
                pass  # already out of the window
        start, n = self._day.get(key, (day_start, 0))
        if start == day_start and n > 0:
            self._day[key] = (start, n - 1)

    def free_at(self, g: DomainGroup, service_id: uuid.UUID, now: datetime, day_start: datetime,
                day_end: datetime) -> datetime:
        """When a group at its limit may be sent to again (now, if it is not at its limit)."""
        key = self._key(g, service_id)
        at = now
        if g.per_day is not None:
            start, n = self._day.get(key, (day_start, 0))
            if start == day_start and n >= g.per_day:
                return day_end
        if g.per_minute is not None:
            recent = self._minute.get(key)
            if recent is not None and len(recent) >= g.per_minute:
                # Room comes back when all but per_minute - 1 of them have left the window.
                at = max(at, recent[len(recent) - g.per_minute] + MINUTE)
        return at

    def usage(self, g: DomainGroup, service_id: uuid.UUID | None, now: datetime,
              day_start: datetime) -> tuple[int, int]:
        """(requests in the last minute, requests today) of one key."""
        key = (g.name, service_id)
        recent = self._minute.get(key, ())
        minute = sum(1 for t in recent if t > now - MINUTE)
        start, n = self._day.get(key, (day_start, 0))
        return minute, n if start == day_start else 0

    def keys(self, g: DomainGroup) -> list[uuid.UUID | None]:
        return sorted({k[1] for k in (*self._minute, *self._day) if k[0] == g.name}, key=lambda s: str(s))


def pick_eligible(items: Iterable[T], email_of: Callable[[T], str], allowed: Callable[[str], bool],
                  lookahead: int = 64) -> int | None:
    """Index of the first of the next `lookahead` items whose recipient may be sent to now; None =
    every one looked at is at its domain's limit (the campaign waits only for those domains)."""
    for i, item in enumerate(islice(items, lookahead)):
        if allowed(email_of(item)):
            return i
    return None
