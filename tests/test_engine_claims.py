"""Claims: the batch query walks the (campaign_id, seq) key from the last claimed seq
(EXPLAIN-pinned), passes over rows another transaction holds (SKIP LOCKED) without moving the
cursor past them, and never returns settled rows."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from engine.dispatch.claims import Claimer, claim_batch
from engine.dispatch.hot_state import CampaignState, HotState, ServiceState
from engine.infra.queries import Q
from tests.engine_support import eventually, make_campaign, make_user


async def _campaign_with_subtasks(pool, n: int):
    user = await make_user(pool, quota=n)
    campaign = await make_campaign(pool, user, planned=n)
    template = await pool.fetchval("SELECT template_id FROM campaign_templates WHERE campaign_id = $1", campaign)
    await pool.execute(
        "INSERT INTO subtasks (campaign_id, seq, email, template_id) "
        "SELECT $1, g, 'r' || g || '@example.net', $2 FROM generate_series(1, $3) g", campaign, template, n)
    return campaign


def _nodes(plan: dict) -> list[dict]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_nodes(child))
    return out


async def test_claim_plan_walks_the_campaign_seq_index_from_the_cursor(deps) -> None:
    pool = deps.pool
    campaign = await _campaign_with_subtasks(pool, 20_000)
    # Half already sent, as in a campaign half-way through.
    await pool.execute("UPDATE subtasks SET status = 'sent' WHERE seq <= 10000")
    await pool.execute("ANALYZE subtasks")
    async with pool.acquire() as conn:
        raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["engine.claim"], campaign, 10_000, 200)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "subtasks"]
    assert scans and all(n["Node Type"] in ("Index Scan", "Index Only Scan") for n in scans), scans
    assert scans[0]["Index Name"] == "subtasks_campaign_id_seq_key"
    # The cursor is part of the index condition, not a filter applied after walking settled rows.
    assert "seq >" in scans[0]["Index Cond"], scans[0]


async def test_claims_follow_the_cursor_and_stop_short_of_locked_rows(deps) -> None:
    pool = deps.pool
    campaign = await _campaign_with_subtasks(pool, 12)
    async with pool.acquire() as conn:
        first = await claim_batch(conn, campaign, 0, 4)
        assert ([c.seq for c in first.items], first.gap) == ([1, 2, 3, 4], None)
        second = await claim_batch(conn, campaign, 4, 4)
        assert [c.seq for c in second.items] == [5, 6, 7, 8]
    await pool.execute("UPDATE subtasks SET status = 'sent' WHERE campaign_id = $1 AND seq = 9", campaign)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM subtasks WHERE campaign_id = $1 AND seq = 11 FOR UPDATE", campaign)
        async with pool.acquire() as conn:
            # seq 9 is settled; seq 11 is held by another transaction (a cancel that may yet roll
            # back): SKIP LOCKED passes it over, and the claim stops short of it, so the cursor
            # never moves past a row that may stay pending and the claim is not the campaign's last.
            held = await claim_batch(conn, campaign, 8, 4)
            assert ([c.seq for c in held.items], held.gap) == ([10], 11)
            # Held at the very front: nothing claimed, the gap says why.
            front = await claim_batch(conn, campaign, 10, 4)
            assert ([c.seq for c in front.items], front.gap) == ([], 11)
    async with pool.acquire() as conn:
        after = await claim_batch(conn, campaign, 10, 4)
        assert ([c.seq for c in after.items], after.gap) == ([11, 12], None)


async def test_claimed_records_share_template_ids_and_hold_no_empty_fields(deps) -> None:
    pool = deps.pool
    campaign = await _campaign_with_subtasks(pool, 6)
    user = await pool.fetchval("SELECT user_id FROM campaigns WHERE id = $1", campaign)
    contact = await pool.fetchval(
        "INSERT INTO contacts (user_id, email, name, fields) VALUES ($1, 'r1@example.net', 'Ann', '{\"city\": \"Oslo\"}') "
        "RETURNING id", user)
    await pool.execute("UPDATE subtasks SET contact_id = $2 WHERE campaign_id = $1 AND seq = 1", campaign, contact)
    async with pool.acquire() as conn:
        items = (await claim_batch(conn, campaign, 0, 6)).items
    assert [(i.name, i.fields) for i in items[:2]] == [("Ann", {"city": "Oslo"}), ("", None)]
    assert len({id(i.template_id) for i in items}) == 1


def _state_with_services(intervals: list[int], frozen: int = 0) -> tuple[HotState, CampaignState]:
    state = HotState()
    now = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
    sids = set()
    for k, interval in enumerate(intervals):
        row = {"id": uuid.uuid4(), "name": f"s{k}", "provider": "engagelab", "domain": "d.example.com",
               "daily_quota": 100, "reset_time": time(2, 0), "send_interval": interval, "enabled": True,
               "used_today": 0, "remaining_today": 100, "quota_day_start": now, "last_request_at": None,
               "consecutive_failures": 0, "throttled_until": None, "abnormal_frozen": k < frozen,
               "abnormal_reason": None}
        s = ServiceState.from_row(row, ZoneInfo("Asia/Shanghai"), now)
        state.services[s.id] = s
        sids.add(s.id)
    user = uuid.uuid4()
    state.set_mapping(user, sids)
    c = CampaignState(uuid.uuid4(), user, "running", None, "news", 100, 100, now)
    state.add_campaign(c)
    return state, c


def test_a_claim_covers_what_the_owners_services_send_in_the_horizon() -> None:
    def first_claim(intervals: list[int], frozen: int = 0) -> int:
        state, c = _state_with_services(intervals, frozen)
        claimer = Claimer(None, state, None, batch=16, least=4, horizon=10.0)  # type: ignore[arg-type]
        return claimer.size(c)

    assert first_claim([3600]) == 4  # one slow service: the least
    assert first_claim([1]) == 10  # 10 s of one 1 s service
    assert first_claim([1, 2]) == 15
    assert first_claim([1] * 12) == 16  # capped at the batch
    assert first_claim([1, 1], frozen=1) == 10  # a frozen service sends nothing
    assert first_claim([]) == 4


def test_a_claim_grows_with_what_the_campaign_took() -> None:
    state, c = _state_with_services([3600])
    claimer = Claimer(None, state, None, batch=16, least=4, horizon=10.0, max_batch=100)  # type: ignore[arg-type]
    assert claimer.size(c) == 4
    c.taken = 30
    assert claimer.size(c) == 60
    c.taken = 500
    assert claimer.size(c) == 100


async def test_a_claim_that_met_a_held_row_is_not_the_campaigns_last_and_comes_back_for_it(deps) -> None:
    pool = deps.pool
    campaign = await _campaign_with_subtasks(pool, 6)
    state = HotState()
    c = CampaignState(campaign, campaign, "running", None, "news", 6, 6, datetime.now(timezone.utc))
    state.add_campaign(c)
    filled: list[int] = []

    async def on_filled(cs: CampaignState) -> None:
        filled.append(len(cs.buffer))

    claimer = Claimer(pool, state, on_filled, batch=16, least=16)  # claims of 16, whatever its services
    task = asyncio.create_task(claimer.run())
    try:
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("SELECT 1 FROM subtasks WHERE campaign_id = $1 AND seq = 3 FOR UPDATE", campaign)
            claimer.want(c)
            await eventually(lambda: _true(bool(filled)), what="the first claim")
            # Stopped short of the held row: 1 and 2 only, the cursor before 3, not exhausted.
            assert ([i.seq for i in c.buffer], c.cursor, c.exhausted) == ([1, 2], 2, False)
        # The holder is gone: the claimer comes back by itself and takes the rest.
        await eventually(lambda: _true(c.exhausted), what="the claim after the lock was released")
        assert [i.seq for i in c.buffer] == [1, 2, 3, 4, 5, 6]
    finally:
        task.cancel()


async def _true(value: bool) -> bool:
    return value
