"""Quota-day boundaries as pure functions: fixed-offset and DST zones."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.domain.quota_day import (
    format_hhmm,
    next_reset,
    parse_hhmm,
    quota_day,
    quota_day_start,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc
H = timedelta(hours=1)


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time as a UTC instant (subtracting same-zone datetimes would ignore `fold`)."""
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)


def test_shanghai_one_minute_before_reset_is_still_yesterdays_day() -> None:
    now = local(SHANGHAI, 2026, 11, 23, 1, 59)
    day = quota_day(time(2, 0), SHANGHAI, now)
    assert day.start == local(SHANGHAI, 2026, 11, 22, 2, 0)
    assert day.next_reset == local(SHANGHAI, 2026, 11, 23, 2, 0)
    assert day.start.tzinfo is UTC and day.start == datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def test_shanghai_at_the_reset_instant_the_new_day_has_started() -> None:
    now = local(SHANGHAI, 2026, 11, 23, 2, 0)
    assert now == datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    assert quota_day_start(time(2, 0), SHANGHAI, now) == now
    assert next_reset(time(2, 0), SHANGHAI, now) == local(SHANGHAI, 2026, 11, 24, 2, 0)
    # One microsecond earlier is still the previous day.
    before = now - timedelta(microseconds=1)
    assert quota_day_start(time(2, 0), SHANGHAI, before) == local(SHANGHAI, 2026, 11, 22, 2, 0)
    assert next_reset(time(2, 0), SHANGHAI, before) == now


def test_answer_does_not_depend_on_the_zone_of_now() -> None:
    utc_now = datetime(2026, 11, 22, 17, 59, tzinfo=UTC)  # 01:59 in Shanghai
    assert quota_day(time(2, 0), SHANGHAI, utc_now) == quota_day(time(2, 0), SHANGHAI, utc_now.astimezone(NEW_YORK))
    assert quota_day_start(time(2, 0), SHANGHAI, utc_now) == local(SHANGHAI, 2026, 11, 22, 2, 0)


@pytest.mark.parametrize("reset", [time(0, 0), time(23, 59)])
def test_midnight_and_last_minute_resets(reset: time) -> None:
    now = local(SHANGHAI, 2026, 1, 1, 12, 0)
    day = quota_day(reset, SHANGHAI, now)
    assert day.start <= now < day.next_reset
    assert day.next_reset - day.start == timedelta(days=1)
    assert day.start.astimezone(SHANGHAI).time() == reset


def test_new_york_spring_forward_day_is_23_hours() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    reset = time(3, 0)
    now = local(NEW_YORK, 2026, 3, 8, 1, 59)  # EST, one minute before the jump
    day = quota_day(reset, NEW_YORK, now)
    assert day.start == local(NEW_YORK, 2026, 3, 7, 3, 0)
    assert day.next_reset == local(NEW_YORK, 2026, 3, 8, 3, 0)
    assert day.next_reset - day.start == 23 * H
    after = quota_day(reset, NEW_YORK, day.next_reset)
    assert after.start == day.next_reset and after.next_reset - after.start == 24 * H


def test_new_york_reset_inside_the_spring_gap_fires_once_after_the_jump() -> None:
    # 02:30 does not exist on 2026-03-08; the reset happens at 03:30 EDT (07:30 UTC) that day.
    reset = time(2, 30)
    gap_reset = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    before = quota_day(reset, NEW_YORK, gap_reset - timedelta(seconds=1))
    assert before.start == local(NEW_YORK, 2026, 3, 7, 2, 30) and before.next_reset == gap_reset
    day = quota_day(reset, NEW_YORK, gap_reset)
    assert day.start == gap_reset
    assert day.next_reset == local(NEW_YORK, 2026, 3, 9, 2, 30)
    assert gap_reset.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)


def test_new_york_fall_back_day_resets_once_at_the_first_occurrence() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice.
    reset = time(1, 30)
    first = local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0)
    second = local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1)
    assert second - first == H
    assert quota_day_start(reset, NEW_YORK, first) == first
    # The second 01:30 is inside the day the first one opened: no second reset.
    at_second = quota_day(reset, NEW_YORK, second)
    assert at_second.start == first
    assert at_second.next_reset == local(NEW_YORK, 2026, 11, 2, 1, 30)
    assert at_second.next_reset - at_second.start == 25 * H


@pytest.mark.parametrize("tz", [SHANGHAI, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")])
@pytest.mark.parametrize("reset", [time(0, 0), time(1, 30), time(2, 0), time(2, 30), time(23, 59)])
def test_every_hour_of_a_year_lies_in_exactly_one_quota_day(tz: ZoneInfo, reset: time) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    previous = quota_day(reset, tz, now)
    starts = {previous.start}
    while now < datetime(2027, 1, 1, tzinfo=UTC):
        now += timedelta(minutes=71)
        day = quota_day(reset, tz, now)
        assert day.start <= now < day.next_reset
        assert timedelta(hours=22) <= day.next_reset - day.start <= timedelta(hours=26)
        # Days follow each other without gaps or overlaps.
        assert day == previous or day.start == previous.next_reset
        previous = day
        starts.add(day.start)
    # One reset per calendar day (the range spans 365 days, plus the starting day).
    assert len(starts) in (365, 366)


@pytest.mark.parametrize("text", ["24:00", "7:00", "12:60", "12:5", "ab:cd", "", "12:00:00", " 12:00", "12:00\n"])
def test_parse_hhmm_rejects_bad_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(text)


def test_parse_and_format_round_trip() -> None:
    assert parse_hhmm("00:00") == time(0, 0)
    assert parse_hhmm("23:59") == time(23, 59)
    assert format_hhmm(parse_hhmm("02:05")) == "02:05"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        quota_day(time(2, 0), SHANGHAI, datetime(2026, 1, 1))
