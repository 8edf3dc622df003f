"""Pure routing rules: pause reasons, pause transitions, fairness picks, refunds, reset schedule."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.dispatch.campaign_control import cancel_refund
from engine.dispatch.hot_state import ServiceState
from engine.domain.fairness import Candidate, pick_campaign, pick_user
from engine.domain.pause_rules import MESSAGES, pause_change, routing_reason

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Svc:
    enabled: bool = True
    abnormal_frozen: bool = False
    remaining_today: int = 10


def test_messages_are_the_exact_design_texts() -> None:
    assert MESSAGES["NO_USER_QUOTA"] == "当前没有发信额度"
    assert MESSAGES["NO_AVAILABLE_SERVICE"] == "当前没有可用发信服务"
    assert MESSAGES["SERVICE_QUOTA_EXHAUSTED"] == "当前可用的发信服务额度已用完，请等待第二天恢复"


@pytest.mark.parametrize("shortfall, services, reason", [
    (0, [Svc()], None),
    (1, [Svc()], "NO_USER_QUOTA"),  # check 1 comes first
    (0, [], "NO_AVAILABLE_SERVICE"),
    (0, [Svc(enabled=False), Svc(abnormal_frozen=True)], "NO_AVAILABLE_SERVICE"),
    (0, [Svc(remaining_today=0)], "SERVICE_QUOTA_EXHAUSTED"),
    # A disabled service's quota does not count: check 3 looks at usable services only.
    (0, [Svc(remaining_today=0), Svc(enabled=False, remaining_today=5)], "SERVICE_QUOTA_EXHAUSTED"),
    (0, [Svc(remaining_today=0), Svc(remaining_today=1)], None),
])
def test_routing_reason(shortfall: int, services: list[Svc], reason: str | None) -> None:
    assert routing_reason(shortfall, services) == reason


def test_pause_changes() -> None:
    assert pause_change("running", None, None) is None
    assert pause_change("running", None, "NO_AVAILABLE_SERVICE").reason == "NO_AVAILABLE_SERVICE"  # type: ignore[union-attr]
    resumed = pause_change("paused", "SERVICE_QUOTA_EXHAUSTED", None)
    assert resumed is not None and resumed.status == "running" and resumed.reason is None
    # A USER pause is only cleared by a person.
    assert pause_change("paused", "USER", None) is None
    assert pause_change("paused", "USER", "NO_USER_QUOTA") is None
    # A routing pause whose condition changed takes the new reason; the same one is no change.
    assert pause_change("paused", "NO_USER_QUOTA", "NO_AVAILABLE_SERVICE").reason == "NO_AVAILABLE_SERVICE"  # type: ignore[union-attr]
    assert pause_change("paused", "NO_USER_QUOTA", "NO_USER_QUOTA") is None
    assert pause_change("completed", None, "NO_USER_QUOTA") is None


def test_pick_user_least_recently_served() -> None:
    a, b, c = (uuid.UUID(int=i) for i in (3, 2, 1))
    assert pick_user([Candidate(a, 5, 0.0), Candidate(b, 2, 0.0), Candidate(c, 9, 0.0)]) == b
    # Never served (0) goes first; ties go to the oldest campaign, then the id.
    assert pick_user([Candidate(a, 0, 10.0), Candidate(b, 0, 5.0), Candidate(c, 1, 0.0)]) == b
    assert pick_user([Candidate(a, 0, 1.0), Candidate(c, 0, 1.0)]) == c
    assert pick_user([]) is None


def test_pick_campaign_takes_turns_in_creation_order() -> None:
    x, y, z = (uuid.uuid4() for _ in range(3))
    order = [x, y, z]
    assert pick_campaign(order, {x, y, z}, None) == x
    assert pick_campaign(order, {x, y, z}, x) == y
    assert pick_campaign(order, {x, y, z}, z) == x  # wraps
    assert pick_campaign(order, {x, z}, x) == z  # skips one without work
    assert pick_campaign(order, set(), x) is None
    turns, last = [], None
    for _ in range(6):
        last = pick_campaign(order, {x, y, z}, last)
        turns.append(last)
    assert turns == [x, y, z, x, y, z]


@pytest.mark.parametrize("cancelled, total, reserved, refund", [
    (7, 10, 10, 7),   # 3 attempted, 7 never: refund 7
    (10, 10, 6, 6),   # start could not charge 4 (paused NO_USER_QUOTA): refund only what is held
    (0, 10, 10, 0),
])
def test_cancel_refund(cancelled: int, total: int, reserved: int, refund: int) -> None:
    assert cancel_refund(cancelled, total, reserved) == refund


def test_cancel_refund_after_render_failures_released_units() -> None:
    # 10 subtasks, 2 failed to render (their units released), 3 sent, 5 cancelled: all 5 held.
    assert cancel_refund(5, 10, 8, released=2) == 5


def _service(quota_day_start: datetime, reset: time = time(2, 0)) -> ServiceState:
    row = {"id": uuid.uuid4(), "name": "s", "provider": "engagelab", "domain": "d.example.com", "daily_quota": 5,
           "reset_time": reset, "send_interval": 3, "enabled": True, "used_today": 0, "remaining_today": 5,
           "quota_day_start": quota_day_start, "last_request_at": None, "consecutive_failures": 0,
           "throttled_until": None, "abnormal_frozen": False, "abnormal_reason": None}
    return ServiceState.from_row(row, TZ, quota_day_start)


def test_next_reset_follows_the_stored_quota_day() -> None:
    # 02:00 Beijing = 18:00 UTC the day before.
    start = datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc)
    s = _service(start)
    assert s.next_reset == datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)
    # A reset time change reschedules from the same quota day start.
    s.reset_time = time(8, 0)
    s.reschedule(TZ, start)
    assert s.next_reset == datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)


def test_ready_at_is_the_later_of_interval_and_throttle() -> None:
    s = _service(datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc))
    t = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
    s.last_request_at = t
    assert (s.ready_at() - t).total_seconds() == 3
    s.throttled_until = t.replace(minute=1)
    assert s.ready_at() == s.throttled_until


def test_fair_queues_pick_exactly_what_pick_user_picks() -> None:
    """The per-service heaps agree with the plain rule over a long random run."""
    import random
    from collections import deque
    from datetime import timedelta

    from engine.dispatch.fair_queue import FairQueues
    from engine.dispatch.hot_state import CampaignState, Claimed, HotState

    rng = random.Random(5)
    st = HotState()
    services = [uuid.UUID(int=1000 + k) for k in range(4)]
    users = [uuid.UUID(int=k + 1) for k in range(12)]
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for n, uid in enumerate(users):
        st.set_mapping(uid, set(rng.sample(services, rng.randint(1, 3))))
        for k in range(2):
            c = CampaignState(uuid.uuid4(), uid, "running", None, "s", 0, 0, base + timedelta(seconds=rng.randint(0, 50)))
            st.add_campaign(c)
    fair = FairQueues(st)
    item = Claimed(uuid.uuid4(), 1, "a@b.c", uuid.uuid4(), "", {})
    for step in range(2000):
        # Work comes and goes.
        c = st.campaigns[rng.choice(list(st.campaigns))]
        if rng.random() < 0.5:
            c.buffer = deque([item] * rng.randint(1, 3))
            fair.offer(st.users[c.user_id])
        elif c.buffer:
            c.buffer.popleft()
        sid = rng.choice(services)
        expected = pick_user([
            Candidate(uid, st.users[uid].last_served, st.campaigns[st.users[uid].campaigns[0]].created_at.timestamp())
            for uid in st.service_users.get(sid, ()) if st.has_runnable(st.users[uid])])
        got = fair.pick(sid)
        assert (got.id if got else None) == expected, step
        if got is not None:
            st.serve_counter += 1
            got.last_served = st.serve_counter


def test_results_are_released_in_request_order() -> None:
    from engine.domain.request_order import InRequestOrder

    order: InRequestOrder[str] = InRequestOrder()
    a, b, c = order.start(), order.start(), order.start()
    assert order.finish(b, "b") == [] and order.finish(c, "c") == []
    assert order.open == 3
    assert order.finish(a, "a") == ["a", "b", "c"] and order.open == 0


@pytest.mark.parametrize("seed", range(6))
def test_fair_queues_agree_with_the_rule_as_mappings_work_and_holds_change(seed: int) -> None:
    """Users share mappings (the queues' first level), mappings change, users are held back and
    passed over (`pick_first`), work comes and goes: every pick is still `pick_user`'s over the
    service's mapped users with runnable work, and `pick_first` the first of them in that order
    that `take` accepts."""
    import random
    from collections import deque
    from datetime import timedelta

    from engine.dispatch.fair_queue import FairQueues
    from engine.dispatch.hot_state import CampaignState, Claimed, HotState

    rng = random.Random(seed)
    st = HotState()
    services = [uuid.UUID(int=1000 + k) for k in range(6)]
    pools = [set(services[:4]), set(services[2:]), set(services), {services[5]}]
    users = [uuid.UUID(int=k + 1) for k in range(30)]
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def remap(uid: uuid.UUID) -> None:
        st.set_mapping(uid, rng.choice(pools) if rng.random() < 0.8 else set(rng.sample(services, 2)))

    for uid in users:
        remap(uid)
        for _ in range(2):
            st.add_campaign(CampaignState(uuid.uuid4(), uid, "running", None, "s", 0, 0,
                                          base + timedelta(seconds=rng.randint(0, 50))))
    fair = FairQueues(st)
    item = Claimed(uuid.uuid4(), 1, "a@b.c", uuid.uuid4(), "", {})

    def order(sid: uuid.UUID) -> list[uuid.UUID]:
        eligible = [st.users[uid] for uid in st.service_users.get(sid, ())
                    if uid not in fair.held and st.has_runnable(st.users[uid])]
        eligible.sort(key=lambda u: (u.last_served, st.campaigns[u.campaigns[0]].created_ts, u.id.int))
        return [u.id for u in eligible]

    def serve(u) -> None:  # type: ignore[no-untyped-def]
        st.serve_counter += 1
        u.last_served = st.serve_counter

    for step in range(3000):
        roll = rng.random()
        c = st.campaigns[rng.choice(list(st.campaigns))]
        if roll < 0.45:
            c.buffer = deque([item] * rng.randint(1, 3))
            if c.user_id not in fair.held:
                fair.offer(st.users[c.user_id])
        elif roll < 0.7 and c.buffer:
            c.buffer.popleft()
        elif roll < 0.75:
            remap(c.user_id)
            if c.user_id not in fair.held:
                fair.offer(st.users[c.user_id])
        elif roll < 0.8:
            fair.held.add(c.user_id)
        elif roll < 0.85 and fair.held:
            uid = rng.choice(sorted(fair.held))
            fair.held.discard(uid)
            fair.offer(st.users[uid])
        sid = rng.choice(services)
        expected = order(sid)
        if rng.random() < 0.3:
            refused = {uid for uid in expected if rng.random() < 0.5}
            found = fair.pick_first(sid, lambda u: None if u.id in refused else "work")
            accepted = [uid for uid in expected if uid not in refused]
            assert (found[0].id if found else None) == (accepted[0] if accepted else None), step
            if found is not None:
                serve(found[0])
        else:
            got = fair.pick(sid)
            assert (got.id if got else None) == (expected[0] if expected else None), step
            if got is not None:
                serve(got)
