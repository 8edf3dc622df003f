"""Sending-policy rules as pure functions (send windows, per-domain limits), on fixed instants."""

from __future__ import annotations

import uuid
from collections import deque
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.domain.domain_limits import DomainCounter, DomainGroup, DomainGroups, domain_of, pick_eligible
from engine.domain.send_window import SendWindow, finish_time

UTC = timezone.utc
SH = ZoneInfo("Asia/Shanghai")
WORKDAYS = frozenset({1, 2, 3, 4, 5})
# 2026-11-23 is a Monday; 09:00 Beijing is 01:00 UTC.
MON_0859 = datetime(2026, 11, 23, 0, 59, tzinfo=UTC)


def window(**kw: object) -> SendWindow:
    base: dict = dict(start=time(9, 0), end=time(18, 0), tz=SH, days=WORKDAYS)
    base.update(kw)
    return SendWindow(**base)


def test_open_from_start_inclusive_to_end_exclusive_on_its_days() -> None:
    w = window()
    assert not w.is_open(MON_0859)
    assert w.is_open(MON_0859 + timedelta(minutes=1))  # 09:00 sharp
    assert w.is_open(datetime(2026, 11, 23, 9, 59, 59, tzinfo=UTC))  # 17:59:59
    assert not w.is_open(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # 18:00
    assert not w.is_open(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))  # Saturday 11:00


def test_next_open_and_next_change() -> None:
    w = window()
    friday_evening = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)  # Fri 19:00
    assert w.next_open(friday_evening) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Mon 09:00
    assert w.next_change(MON_0859) == MON_0859 + timedelta(minutes=1)
    assert w.next_change(MON_0859 + timedelta(hours=1)) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_windows_in_a_zone_with_dst() -> None:
    ny = window(start=time(2, 30), end=time(4, 0), tz=ZoneInfo("America/New_York"), days=frozenset({7}))
    # 2027-03-14 (Sunday): 02:00 jumps to 03:00; 02:30 does not exist and shifts to 03:30 EDT.
    opens = ny.next_open(datetime(2027, 3, 14, 0, 0, tzinfo=UTC))
    assert opens == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert ny.is_open(opens) and not ny.is_open(datetime(2027, 3, 14, 8, 0, tzinfo=UTC))  # 04:00 EDT


def test_finish_time_spans_closed_hours() -> None:
    w = window()
    # 10 hours of sending from Monday 09:00: 9 h on Monday, the last hour on Tuesday 09-10.
    assert finish_time(w, MON_0859 + timedelta(minutes=1), 10 * 3600) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert finish_time(None, MON_0859, 60) == MON_0859 + timedelta(seconds=60)
    # Asked on Saturday: nothing happens until Monday 09:00.
    assert finish_time(w, datetime(2026, 11, 28, 3, 0, tzinfo=UTC), 60) == \
        datetime(2026, 11, 30, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("w", [window(start=time(18, 0), end=time(9, 0)), window(days=frozenset()),
                               window(days=frozenset({0, 1}))])
def test_unusable_windows(w: SendWindow) -> None:
    assert w.problem() is not None


def test_domain_groups_match_case_insensitively() -> None:
    netease = DomainGroup.parse("netease", "163.com|126.com", per_minute=2)
    groups = DomainGroups([DomainGroup.parse("qq", "qq.com", per_day=3), netease])
    assert domain_of("Bob@QQ.com") == "qq.com"
    assert groups.group_of("a@126.COM") is netease and groups.group_of("a@gmail.com") is None


def test_per_minute_and_per_day_limits_across_or_per_service() -> None:
    s1, s2 = uuid.uuid4(), uuid.uuid4()
    day = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    t = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    minute = DomainGroup.parse("netease", "163.com", per_minute=2)
    c = DomainCounter()
    for k in range(2):
        assert c.allowed(minute, s1, t + timedelta(seconds=k), day)
        c.record(minute, s2 if k else s1, t + timedelta(seconds=k), day)
    # Across services: the second service's request counts too.
    assert not c.allowed(minute, s1, t + timedelta(seconds=30), day)
    assert c.allowed(minute, s1, t + timedelta(seconds=60, microseconds=1), day)  # the first aged out
    daily = DomainGroup.parse("qq", "qq.com", per_day=1, per_service=True)
    c.record(daily, s1, t, day)
    assert not c.allowed(daily, s1, t + timedelta(hours=5), day)
    assert c.allowed(daily, s2, t, day)  # per service: s2 has its own count
    assert c.allowed(daily, s1, t + timedelta(days=1), day + timedelta(days=1))  # a new quota day


def test_a_domain_at_its_limit_is_skipped_for_the_next_subtask() -> None:
    buffer = deque(["a@qq.com", "b@qq.com", "c@gmail.com", "d@qq.com"])
    assert pick_eligible(buffer, str, lambda email: not email.endswith("@qq.com")) == 2
    assert pick_eligible(buffer, str, lambda email: True) == 0
    assert pick_eligible(buffer, str, lambda email: False) is None
    assert pick_eligible(buffer, str, lambda email: email.startswith("d"), lookahead=3) is None


def test_the_eta_counts_closed_hours() -> None:
    from engine.live.progress import figures

    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 17:00 Beijing: one hour left today
    started = now - timedelta(hours=1)
    # 600 settled in the last 5 minutes = 120/min; 14,400 left = 2 hours of sending.
    plain = figures("running", 20_000, 14_400, 600, started, now)
    assert plain.eta_seconds == 7200
    windowed = figures("running", 20_000, 14_400, 600, started, now, window())
    # 1 h today (17-18), the night and morning closed, 1 h from Tuesday 09:00.
    assert windowed.eta_seconds == (datetime(2026, 11, 24, 2, 0, tzinfo=UTC) - now).total_seconds()
    waiting = figures("paused", 20_000, 14_400, 600, started, now, window(), "OUTSIDE_SEND_WINDOW")
    assert waiting.eta_seconds == windowed.eta_seconds
    assert figures("paused", 20_000, 14_400, 600, started, now, window(), "USER").eta_seconds is None
