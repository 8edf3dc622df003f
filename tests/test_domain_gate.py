"""The domain gate's rules without a database: counts given back, when a block lifts, parking a
blocked head to serve the next subtask, the parking bound, and the business day."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from engine.dispatch import domain_gate
from engine.dispatch.domain_gate import DomainGate
from engine.dispatch.hot_state import CampaignState, Claimed
from engine.domain.domain_limits import DomainCounter, DomainGroup, business_day

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
SHANGHAI = ZoneInfo("Asia/Shanghai")
S1, S2 = uuid.uuid4(), uuid.uuid4()


def claimed(emails: list[str]) -> list[Claimed]:
    return [Claimed(uuid.uuid4(), i + 1, e, uuid.uuid4(), "n", {}) for i, e in enumerate(emails)]


def campaign(emails: list[str]) -> CampaignState:
    c = CampaignState(uuid.uuid4(), uuid.uuid4(), "running", None, "news", len(emails), len(emails), T0)
    c.buffer.extend(claimed(emails))
    return c


def test_give_back_and_when_a_block_lifts() -> None:
    g = DomainGroup.parse("qq", "qq.com", per_minute=2, per_day=3)
    day_start, day_end = business_day(T0, SHANGHAI)
    counter = DomainCounter()
    counter.record(g, S1, T0, day_start)
    counter.record(g, S1, T0 + timedelta(seconds=10), day_start)
    assert not counter.allowed(g, S1, T0 + timedelta(seconds=20), day_start)
    # Room comes back when the first request leaves the window, 60 s after it.
    assert counter.free_at(g, S1, T0 + timedelta(seconds=20), day_start, day_end) == T0 + timedelta(seconds=60)
    counter.give_back(g, S1, T0 + timedelta(seconds=10), day_start)  # throttled: it did not count
    assert counter.allowed(g, S1, T0 + timedelta(seconds=20), day_start)
    counter.record(g, S1, T0 + timedelta(seconds=70), day_start)
    counter.record(g, S1, T0 + timedelta(seconds=140), day_start)
    assert counter.usage(g, None, T0 + timedelta(seconds=141), day_start) == (1, 3)
    # The day's limit: blocked until the business day ends (midnight in Beijing = 16:00 UTC).
    assert not counter.allowed(g, S1, T0 + timedelta(seconds=300), day_start)
    assert counter.free_at(g, S1, T0 + timedelta(seconds=300), day_start, day_end) == day_end
    assert day_end == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def test_a_per_day_group_keeps_no_request_times() -> None:
    g = DomainGroup.parse("gmail", "gmail.com", per_day=1_000_000)
    day_start, _ = business_day(T0, SHANGHAI)
    counter = DomainCounter()
    for i in range(1000):
        counter.record(g, S1, T0 + timedelta(seconds=i), day_start)
    assert not counter._minute and counter.usage(g, None, T0, day_start) == (0, 1000)


def test_a_blocked_head_is_parked_and_the_next_subtask_served() -> None:
    gate = DomainGate(SHANGHAI)
    gate.set_groups([DomainGroup.parse("qq", "qq.com", per_minute=1),
                     DomainGroup.parse("163", "163.com", per_minute=1, per_service=True)])
    c = campaign(["a@qq.com", "b@QQ.com", "c@163.com", "d@163.com", "e@example.net"])
    assert gate.take(c, S1, T0).email == "a@qq.com"  # type: ignore[union-attr]
    assert gate.take(c, S1, T0).email == "c@163.com"  # type: ignore[union-attr]
    # qq.com is at its limit (all services) and 163.com for S1: both parked, the next one served.
    assert gate.take(c, S1, T0).email == "e@example.net"  # type: ignore[union-attr]
    assert (c.parked_n, [i.email for q in c.parked.values() for i in q]) == (2, ["b@QQ.com", "d@163.com"])
    assert c.runnable and c.has_pending and not c.buffer
    assert gate.blocked_until == T0 + timedelta(minutes=1)
    # Another service may send to 163.com (per service), not to qq.com.
    assert gate.take(c, S2, T0).email == "d@163.com"  # type: ignore[union-attr]
    assert gate.take(c, S2, T0) is None
    # A minute on, the parked qq.com subtask goes first.
    assert gate.take(c, S1, T0 + timedelta(minutes=1)).email == "b@QQ.com"  # type: ignore[union-attr]
    assert c.parked_n == 0 and not c.parked and not c.runnable


def test_parking_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(domain_gate, "MAX_PARKED", 3)
    gate = DomainGate(SHANGHAI)
    gate.set_groups([DomainGroup.parse("qq", "qq.com", per_day=1)])
    c = campaign([f"r{i}@qq.com" for i in range(6)] + ["x@example.net"])
    assert gate.take(c, S1, T0).email == "r0@qq.com"  # type: ignore[union-attr]
    assert gate.take(c, S1, T0) is None  # 3 parked, the 4th held at the head: the campaign waits
    assert c.parked_n == 3 and c.buffer[0].email == "r4@qq.com"


def test_groups_changed_give_parked_subtasks_back_in_order() -> None:
    gate = DomainGate(SHANGHAI)
    gate.set_groups([DomainGroup.parse("qq", "qq.com", per_day=1)])
    c = campaign(["a@qq.com", "b@qq.com", "c@qq.com", "d@example.net", "e@example.net"])
    assert [gate.take(c, S1, T0).email for _ in range(2)] == ["a@qq.com", "d@example.net"]  # type: ignore[union-attr]
    gate.set_groups([])
    DomainGate.unpark([c])
    assert [i.email for i in c.buffer] == ["b@qq.com", "c@qq.com", "e@example.net"] and c.parked_n == 0


def test_the_cap_counts_and_gives_back() -> None:
    gate = DomainGate(SHANGHAI, rate_limit=2)
    assert gate.cap_room(T0) == 2 and gate.cap_free_at() is None
    gate.count(T0)
    gate.count(T0 + timedelta(seconds=5))
    assert gate.cap_room(T0 + timedelta(seconds=6)) == 0
    assert gate.cap_free_at() == T0 + timedelta(minutes=1)
    gate.give_back("x@example.net", S1, T0 + timedelta(seconds=5))
    assert gate.cap_room(T0 + timedelta(seconds=6)) == 1
    assert gate.cap_room(T0 + timedelta(minutes=1)) == 2


async def test_the_recount_reads_only_the_days_requests_through_the_service_attempt_index(deps) -> None:
    """The rebuild (and the API's usage) walks `subtasks_service_attempt` per service from the day's
    start: a range of the index, never a scan of the whole table."""
    import json

    from engine.infra.queries import Q
    from tests.engine_support import make_campaign, make_service, make_user

    pool = deps.pool
    services = [await make_service(pool, deps.box, deps.settings, T0, base_url="http://127.0.0.1:9") for _ in range(3)]
    user = await make_user(pool, quota=10)
    campaign = await make_campaign(pool, user, planned=10)
    template = await pool.fetchval("SELECT template_id FROM campaign_templates WHERE campaign_id = $1", campaign)
    # 30,000 requests of earlier days and 30 of today.
    await pool.execute(
        "INSERT INTO subtasks (campaign_id, seq, email, template_id, status, service_id, attempted_at) "
        "SELECT $1, g, 'r' || g || '@qq.com', $2, 'sent', ($3::uuid[])[1 + g % 3], "
        "       $4::timestamptz - make_interval(secs => CASE WHEN g <= 30 THEN g ELSE 86400 * 2 + g END) "
        "FROM generate_series(1, 30000) g", campaign, template, services, T0)
    await pool.execute("ANALYZE subtasks")
    day_start, _ = business_day(T0, SHANGHAI)
    async with pool.acquire() as conn:
        raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["domain_limits.usage"], day_start,
                                  T0 - timedelta(minutes=1))
        rows = await conn.fetch(Q["domain_limits.usage"], day_start, T0 - timedelta(minutes=1))
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]

    def nodes(p: dict) -> list[dict]:  # type: ignore[type-arg]
        return [p, *(n for child in p.get("Plans", []) for n in nodes(child))]
    on_subtasks = [n for n in nodes(plan) if n.get("Relation Name") == "subtasks" or
                   n.get("Index Name") == "subtasks_service_attempt"]
    assert on_subtasks and not any(n["Node Type"] == "Seq Scan" for n in on_subtasks), on_subtasks
    index = [n for n in on_subtasks if n.get("Index Name") == "subtasks_service_attempt"]
    assert index and "attempted_at >=" in index[0]["Index Cond"], index
    assert sum(r["day"] for r in rows) == 30 and sum(r["minute"] for r in rows) == 30
