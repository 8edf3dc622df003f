"""Claims: the batch query walks the pending index from the last claimed seq (EXPLAIN-pinned),
skips rows another transaction holds, and never returns settled rows."""

from __future__ import annotations

import json

from engine.dispatch.claims import claim_batch
from engine.infra.queries import Q
from tests.engine_support import make_campaign, make_user


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


async def test_claims_follow_the_cursor_and_do_not_skip_locked_rows(deps) -> None:
    pool = deps.pool
    campaign = await _campaign_with_subtasks(pool, 10)
    async with pool.acquire() as conn:
        first = await claim_batch(conn, campaign, 0, 4)
        assert [c.seq for c in first] == [1, 2, 3, 4]
        second = await claim_batch(conn, campaign, first[-1].seq, 4)
        assert [c.seq for c in second] == [5, 6, 7, 8]
    await pool.execute("UPDATE subtasks SET status = 'sent' WHERE campaign_id = $1 AND seq = 9", campaign)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM subtasks WHERE campaign_id = $1 AND seq = 10 FOR UPDATE", campaign)
        async with pool.acquire() as conn:
            # seq 9 is settled; seq 10 is held by another transaction (a cancel that may yet roll
            # back) and still pending: claimed, so the cursor never moves past a row left pending
            # and the claim is not mistaken for the campaign's last. The bind decides.
            assert [c.seq for c in await claim_batch(conn, campaign, 8, 4)] == [10]
