"""Send windows: the hours and weekdays a campaign may send in, in a time zone.

Pure functions of (window, instant). A window is open on its weekdays (ISO: 1 = Monday) from
`start` (inclusive) to `end` (exclusive), wall-clock time in its zone; `start < end` (no
overnight windows: two campaigns cover a night). Wall-clock times that do not exist on a DST
day shift forward like quota reset times (PEP 495, fold=0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

ALL_DAYS = frozenset(range(1, 8))


@dataclass(frozen=True)
class SendWindow:
    start: time
    end: time
    tz: ZoneInfo
    days: frozenset[int] = field(default=ALL_DAYS)

    def problem(self) -> str | None:
        """Why the window is unusable (None = it is usable)."""
        if not self.start < self.end:
            return "start must be before end (windows do not run overnight)"
        if not self.days or not self.days <= ALL_DAYS:
            return "days are ISO weekdays 1 (Monday) to 7 (Sunday), at least one"
        return None

    def _at(self, day: date, t: time) -> datetime:
        return datetime.combine(day, t.replace(fold=0), tzinfo=self.tz).astimezone(timezone.utc)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        day = local.date()
        return day.isoweekday() in self.days and self._at(day, self.start) <= now < self._at(day, self.end)

    def next_open(self, now: datetime) -> datetime:
        """`now` if open, else the next opening instant."""
        if self.is_open(now):
            return now
        today = now.astimezone(self.tz).date()
        for k in range(0, 9):
            day = today + timedelta(days=k)
            if day.isoweekday() in self.days and self._at(day, self.start) > now:
                return self._at(day, self.start)
        raise AssertionError("a usable window opens within a week")

    def close_after(self, opened: datetime) -> datetime:
        """The end of the window that is open at `opened`."""
        return self._at(opened.astimezone(self.tz).date(), self.end)

    def next_change(self, now: datetime) -> datetime:
        """When `is_open` next changes value."""
        return self.close_after(now) if self.is_open(now) else self.next_open(now)


def finish_time(window: SendWindow | None, now: datetime, sending_seconds: float) -> datetime:
    """When `sending_seconds` of sending done only inside the window ends (the ETA's instant)."""
    if window is None:
        return now + timedelta(seconds=sending_seconds)
    left = timedelta(seconds=max(0.0, sending_seconds))
    t = now
    while True:
        opened = window.next_open(t)
        closes = window.close_after(opened)
        if opened + left <= closes:
            return opened + left
        left -= closes - opened
        t = closes


def window_of(doc: Mapping[str, Any] | None, default_tz: ZoneInfo) -> SendWindow | None:
    """A stored window (`{"start", "end", "days"?, "tz"?}`) as a SendWindow; None for none."""
    if not doc:
        return None
    start, end = (time.fromisoformat(doc[k]) for k in ("start", "end"))
    days = frozenset(doc.get("days") or ALL_DAYS)
    return SendWindow(start, end, ZoneInfo(doc["tz"]) if doc.get("tz") else default_tz, days)
