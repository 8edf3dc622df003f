"""Per-recipient-domain limits: groups of domains (`qq.com`, `163.com|126.com`), at most N
requests per minute and per quota day, across all services or per service, and the pick rule
that skips a subtask whose domain is at its limit for the next one (never blocking a campaign).

Pure and in memory; the counts are rebuilt from subtasks (recipient domain, service, attempt
time) like the daily quota. Not yet enforced by the dispatcher: the pick hook waits for the
dispatch rework (issue 8).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from itertools import islice
from datetime import datetime, timedelta
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
MINUTE = timedelta(minutes=1)


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
        for g in self.groups:
            for d in g.domains:
                self._by_domain.setdefault(d, g)

    def group_of(self, email: str) -> DomainGroup | None:
        return self._by_domain.get(domain_of(email))


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

    def record(self, g: DomainGroup, service_id: uuid.UUID, at: datetime, day_start: datetime) -> None:
        key = self._key(g, service_id)
        self._minute.setdefault(key, deque()).append(at)
        start, n = self._day.get(key, (day_start, 0))
        self._day[key] = (day_start, n + 1 if start == day_start else 1)


def pick_eligible(items: Iterable[T], email_of: Callable[[T], str], allowed: Callable[[str], bool],
                  lookahead: int = 64) -> int | None:
    """Index of the first of the next `lookahead` items whose recipient may be sent to now; None =
    every one looked at is at its domain's limit (the campaign waits only for those domains)."""
    for i, item in enumerate(islice(items, lookahead)):
        if allowed(email_of(item)):
            return i
    return None
