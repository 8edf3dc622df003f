"""Warm-up ramps: a new service's daily quota grows day by day up to its full quota.

Pure functions. A ramp is a table (`schedule`: the quota of day 1, 2, …) or a geometric
growth (`start` on day 1, times `factor` each day). Ramp days are quota days counted from the
day the ramp started, by the business calendar: a reset by hand on the same day does not move
the ramp on. Past the table, or once the growth reaches it, the full daily quota applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping


@dataclass(frozen=True)
class Ramp:
    schedule: tuple[int, ...] = ()
    start: int | None = None
    factor: float | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> "Ramp | None":
        if not doc:
            return None
        return cls(tuple(doc.get("schedule") or ()), doc.get("start"), doc.get("factor"))

    def problem(self) -> str | None:
        """Why this ramp is not usable (None = it is)."""
        if self.schedule and (self.start is not None or self.factor is not None):
            return "give either schedule or start and factor, not both"
        if not self.schedule and (self.start is None or self.factor is None):
            return "give a schedule, or start and factor"
        if self.schedule and list(self.schedule) != sorted(self.schedule):
            return "a schedule never goes down"
        return None


def ramp_day(started: date, today: date) -> int:
    """1 on the day the ramp started, 2 the next day, …"""
    return max(1, (today - started).days + 1)


def ramp_quota(daily_quota: int, ramp: Ramp | None, day: int) -> int:
    """The daily quota of ramp day `day` (never above the full quota)."""
    if ramp is None:
        return daily_quota
    if ramp.schedule:
        q = ramp.schedule[day - 1] if day <= len(ramp.schedule) else daily_quota
    else:
        assert ramp.start is not None and ramp.factor is not None
        # log-space comparison first: factor ** day overflows long before it matters.
        if math.log(ramp.start) + (day - 1) * math.log(ramp.factor) >= math.log(daily_quota):
            return daily_quota
        q = math.floor(ramp.start * ramp.factor ** (day - 1))
    return max(1, min(daily_quota, q))


def ramp_finished(daily_quota: int, ramp: Ramp | None, day: int) -> bool:
    return ramp is None or ramp_quota(daily_quota, ramp, day) >= daily_quota
