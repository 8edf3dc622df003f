"""The dispatcher's gate for per-recipient-domain limits and the engine-wide per-minute cap.

Counts are taken at the bind (like the daily quota) and given back when the request did not count
(throttled, or never made). A claimed subtask whose domain group is at its limit is *parked* in
its campaign (one queue per group) instead of blocking the buffer's head: each subtask is looked at
once when it is parked, and a pick then only asks the few parked groups whether they are free
again, so a slow domain costs O(groups) per pick, not a rescan of the buffer. With no group and
no cap, the dispatcher never calls into the gate.
"""

from __future__ import annotations

import uuid
from collections import deque
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from engine.dispatch.hot_state import CampaignState, Claimed
from engine.domain.domain_limits import MINUTE, DomainCounter, DomainGroup, DomainGroups, business_day

# Subtasks one campaign may hold parked (claimed, waiting for their domain): past it the campaign
# claims no more, so a domain blocked for the day cannot pull a whole campaign into memory.
MAX_PARKED = 10_000


class DomainGate:
    def __init__(self, tz: ZoneInfo | timezone = timezone.utc, rate_limit: int = 0):
        self.tz = tz
        self.groups = DomainGroups([])
        # Any group defined: a plain attribute, read on every pick.
        self.on = False
        self.counter = DomainCounter()
        # Requests per minute across the engine (0 = no cap) and the bind times of the last minute.
        self.rate_limit = rate_limit
        self.recent: deque[datetime] = deque()
        self._day_start = self._day_end = datetime.min.replace(tzinfo=timezone.utc)
        # The earliest moment a block met during the current pick lifts (None = nothing blocked).
        self.blocked_until: datetime | None = None

    # -- the business day the per-day limits count in ----------------------------------------------

    def day(self, now: datetime) -> tuple[datetime, datetime]:
        """(start, end) of the business day holding `now`, cached until it ends."""
        if not self._day_start <= now < self._day_end:
            self._day_start, self._day_end = business_day(now, self.tz)
        return self._day_start, self._day_end

    # -- the engine-wide cap -----------------------------------------------------------------------

    def cap_room(self, now: datetime) -> int:
        """Requests the cap allows now (a large number when there is no cap)."""
        if self.rate_limit <= 0:
            return 1 << 30
        recent, edge = self.recent, now - MINUTE
        while recent and recent[0] <= edge:
            recent.popleft()
        return self.rate_limit - len(recent)

    def cap_free_at(self) -> datetime | None:
        """When the oldest request of the window leaves it (None: no cap, or nothing counted)."""
        if self.rate_limit <= 0 or not self.recent:
            return None
        return self.recent[0] + MINUTE

    # -- groups --------------------------------------------------------------------------------------

    def set_groups(self, groups: Iterable[DomainGroup]) -> None:
        """New definitions; the counts of groups that keep their name are kept."""
        self.groups = DomainGroups(groups)
        self.on = bool(self.groups.groups)

    def take(self, c: CampaignState, service_id: uuid.UUID, now: datetime) -> Claimed | None:
        """The campaign's next subtask this service may send now: a parked one whose group is free
        again first (they are older), else the buffer's head, parking blocked heads on the way."""
        day_start, day_end = self.day(now)
        counter = self.counter
        if c.parked_n:
            for name, q in c.parked.items():
                g = self.groups.by_name.get(name) if q else None
                if g is None:
                    continue
                if counter.allowed(g, service_id, now, day_start):
                    c.parked_n -= 1
                    item = q.popleft()
                    if not q:
                        del c.parked[name]
                    self._record(g, service_id, now, day_start)
                    return item
                self._blocked(counter.free_at(g, service_id, now, day_start, day_end))
        buf, groups = c.buffer, self.groups
        while buf:
            item = buf[0]
            g = groups.group_of(item.email)
            if g is None:
                return buf.popleft()
            if counter.allowed(g, service_id, now, day_start):
                self._record(g, service_id, now, day_start)
                return buf.popleft()
            self._blocked(counter.free_at(g, service_id, now, day_start, day_end))
            if c.parked_n >= MAX_PARKED:
                return None  # held at the head: the campaign waits for its domains
            parked = c.parked.get(g.name)
            if parked is None:
                parked = c.parked[g.name] = deque()
            parked.append(buf.popleft())
            c.parked_n += 1
            c.taken += 1  # the next claim grows with what was parked, as with what was sent
        return None

    def _record(self, g: DomainGroup, service_id: uuid.UUID, now: datetime, day_start: datetime) -> None:
        self.counter.record(g, service_id, now, day_start)

    def _blocked(self, until: datetime) -> None:
        if self.blocked_until is None or until < self.blocked_until:
            self.blocked_until = until

    def count(self, at: datetime) -> None:
        """A bind at `at` against the engine-wide cap (the group count is taken in `take`)."""
        if self.rate_limit > 0:
            self.recent.append(at)

    def give_back(self, email: str, service_id: uuid.UUID, at: datetime) -> None:
        """A request bound at `at` that did not count (throttled, never made)."""
        if self.rate_limit > 0:
            try:
                self.recent.remove(at)
            except ValueError:
                pass  # already out of the window
        g = self.groups.group_of(email)
        if g is not None:
            self.counter.give_back(g, service_id, at, self.day(at)[0])

    @staticmethod
    def unpark(campaigns: Iterable[CampaignState]) -> None:
        """Groups changed: parked subtasks go back to the head of their buffers, in claim order."""
        for c in campaigns:
            if c.parked_n:
                items = sorted((i for q in c.parked.values() for i in q), key=lambda i: i.seq)
                c.buffer.extendleft(reversed(items))
                c.parked.clear()
                c.parked_n = 0

    # -- rebuild ---------------------------------------------------------------------------------------

    def rebuild(self, rows: Sequence[Mapping[str, object]], now: datetime) -> None:
        """Counts from subtasks (`domain_limits.usage` rows: service, domain, day, recent times)."""
        self.counter = DomainCounter()
        self.recent = deque()
        day_start, _ = self.day(now)
        edge = now - MINUTE
        every: list[datetime] = []
        for r in rows:
            recent = [t for t in r["recent"] if t > edge]  # type: ignore[attr-defined]
            every.extend(recent)
            g = self.groups.group_of_domain(str(r["domain"]))
            if g is None:
                continue
            sid = r["service_id"]
            assert isinstance(sid, uuid.UUID)
            self.counter.add_recent(g, sid, recent)
            self.counter.add_day(g, sid, day_start, int(r["day"]))  # type: ignore[call-overload]
        if self.rate_limit > 0:
            self.recent = deque(sorted(every))

    def usage(self, now: datetime) -> list[tuple[DomainGroup, uuid.UUID | None, int, int]]:
        """(group, service or None, last minute, today) for every key with counts."""
        day_start, _ = self.day(now)
        return [(g, sid, *self.counter.usage(g, sid, now, day_start))
                for g in self.groups.groups for sid in self.counter.keys(g)]
