"""Quota days: from one wall-clock reset time to the next, in the business time zone.

Pure functions of (reset time, zone, instant). A quota day starts at the latest reset instant
<= now and ends at the first one > now. DST rules (PEP 495, as `zoneinfo` applies them):
- a reset time that falls in a spring-forward gap happens at the same distance past the
  transition (02:30 on a day that jumps 02:00→03:00 resets at 03:30 local);
- a reset time that occurs twice on a fall-back day resets at its first occurrence only.
So every calendar day has exactly one reset instant, and the instants only move forward.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

# `$(?!\n)`: Python's `$` also matches before a final newline; the lookahead closes that
# hole and the pattern still means the same in JSON Schema (ECMA) regexes.
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$(?!\n)"
_HHMM = re.compile(HHMM)


class QuotaDay(NamedTuple):
    start: datetime  # the reset instant that opened the current quota day (UTC)
    next_reset: datetime  # the reset instant that closes it (UTC)


def parse_hhmm(text: str) -> time:
    """`"02:00"` → `time(2, 0)`; anything but a valid 00:00–23:59 raises ValueError."""
    if not _HHMM.match(text):
        raise ValueError(f"reset time must be HH:MM between 00:00 and 23:59, not {text!r}")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


# The seed's quota tool wrote reset times as `HH:MM:SS`; operators still type that form.
_HHMMSS = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$(?!\n)")


def parse_reset_time(text: str) -> time:
    """`"02:00"` or `"02:00:00"` → `time(2, 0)`. Reset times are whole minutes, so seconds other
    than `00` raise ValueError rather than being silently dropped."""
    if _HHMMSS.match(text):
        if not text.endswith(":00"):
            raise ValueError(f"reset times are whole minutes: seconds must be 00, not {text!r}")
        text = text[:5]
    elif not _HHMM.match(text):
        raise ValueError(f"reset time must be HH:MM or HH:MM:SS between 00:00 and 23:59, not {text!r}")
    return parse_hhmm(text)


def format_hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def reset_instant(day: date, reset: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of `day`'s reset; gap times shift forward, doubled times take the first."""
    # fold=0 means "the offset in force before the transition" for both gaps and folds, which is
    # exactly the forward shift for gaps and the first occurrence for folds.
    local = datetime.combine(day, reset.replace(tzinfo=None, fold=0), tzinfo=tz)
    return local.astimezone(timezone.utc)


def quota_day(reset: time, tz: ZoneInfo, now: datetime) -> QuotaDay:
    """The quota day containing `now` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(tz).date()
    # Two days either side covers any UTC offset change (even a skipped calendar day), so the
    # answer never depends on which local date a shifted reset instant happens to land on.
    instants = sorted({reset_instant(today + timedelta(days=k), reset, tz) for k in range(-2, 3)})
    start = max(i for i in instants if i <= now)
    following = min(i for i in instants if i > now)
    return QuotaDay(start, following)


def quota_day_start(reset: time, tz: ZoneInfo, now: datetime) -> datetime:
    """The latest reset instant <= now."""
    return quota_day(reset, tz, now).start


def next_reset(reset: time, tz: ZoneInfo, now: datetime) -> datetime:
    """The first reset instant strictly after now."""
    return quota_day(reset, tz, now).next_reset
