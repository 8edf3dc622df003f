"""Plans that stay flat as subtasks grows (bench/large_table.py measures the rates): on a table
whose statistics say nothing is in flight — a large table's, where autoanalyze waits for millions
of changes — bind and settle still find their rows by primary key, and start-up recovery recounts
only the active campaigns' rows."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg

from engine.infra.queries import Q
from tests.engine_support import make_campaign, make_service, make_user

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


def _nodes(raw: Any) -> list[dict]:
    out, todo = [], [(json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]]
    while todo:
        node = todo.pop()
        todo.extend(node.get("Plans", []))
        out.append(node)
    return out


def _scans(raw: Any, relation: str) -> list[dict]:
    return [n for n in _nodes(raw) if n.get("Relation Name") == relation and n["Node Type"] != "ModifyTable"]


def _subtask_indexes(raw: Any) -> set[str]:
    return {n["Index Name"] for n in _nodes(raw) if n.get("Index Name", "").startswith("subtasks")}


async def _settled_table_with_some_in_flight(pool: asyncpg.Pool, deps: Any) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """20,000 settled rows analysed, then 2,000 of a running campaign put in flight unanalysed."""
    user = await make_user(pool, quota=30_000)
    service = await make_service(pool, deps.box, deps.settings, NOW, base_url="http://127.0.0.1:9")
    old = await make_campaign(pool, user, planned=0)
    live = await make_campaign(pool, user, planned=0)
    await pool.execute("UPDATE campaigns SET status = 'completed', finished_at = $2 WHERE id = $1", old, NOW)
    await pool.execute("UPDATE campaigns SET status = 'running' WHERE id = $1", live)
    for campaign, n, status in ((old, 20_000, "sent"), (live, 2_000, "pending")):
        await pool.execute(
            "INSERT INTO subtasks (campaign_id, seq, email, template_id, status, service_id, attempted_at) "
            "SELECT $1, g, 'r' || g || '@example.net', (SELECT template_id FROM campaign_templates "
            "WHERE campaign_id = $1), $3, CASE WHEN $3 = 'sent' THEN $4::uuid END, "
            "CASE WHEN $3 = 'sent' THEN $5::timestamptz END FROM generate_series(1, $2) g",
            campaign, n, status, service, NOW)
    await pool.execute("VACUUM ANALYZE subtasks")
    await pool.execute("UPDATE subtasks SET status = 'sending', service_id = $2, attempted_at = $3, "
                       "from_address = 'n@x.example' WHERE campaign_id = $1", live, service, NOW)
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM subtasks WHERE campaign_id = $1 ORDER BY seq LIMIT 500",
                                             live)]
    return service, ids


async def test_settle_and_bind_probe_the_primary_key_when_statistics_say_nothing_is_in_flight(deps) -> None:
    pool = deps.pool
    service, ids = await _settled_table_with_some_in_flight(pool, deps)
    n = len(ids)
    async with pool.acquire() as conn:
        # What a 20M-row table leaves the planner: reading the whole table is out of the question,
        # so the choice is between the primary key and an index on the in-flight rows.
        await conn.execute("SET enable_seqscan = off")
        settle = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["engine.settle"], ids, ["sent"] * n, ["m"] * n,
                                     [None] * n, [NOW] * n, [service] * n, [NOW] * n, [False] * n)
        bind = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["engine.bind"], ids, [service] * n,
                                   ["a@b.example"] * n, [NOW] * n, 1)
    for name, raw in (("settle", settle), ("bind", bind)):
        # Before: the in-flight partial index (subtasks_sending), estimated at one row, scanned
        # whole per result. Now each row is found by a key: its id, or (service, attempt time).
        used = _subtask_indexes(raw)
        assert used and not used & {"subtasks_sending", "subtasks_in_flight"}, (name, used)


async def test_start_up_recount_reads_only_the_active_campaigns_rows(deps) -> None:
    pool = deps.pool
    await _settled_table_with_some_in_flight(pool, deps)
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # a large table: see above
        raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["recovery.reconcile_campaigns"], [])
    # Before: `… IN (active) OR = ANY($1)` read every subtask (a sequential scan on the 20M-row
    # table; here, with it disabled, the whole campaign_id index with the OR as a filter).
    assert not [n for n in _scans(raw, "subtasks") if n["Node Type"] == "Seq Scan"]
    probes = [n for n in _nodes(raw) if n.get("Index Name", "").startswith("subtasks")]
    assert probes and all("campaign_id =" in n.get("Index Cond", "") for n in probes), \
        [(n.get("Index Cond"), n.get("Filter")) for n in probes]


def _joined(node: dict, in_subplan: bool = False) -> list[dict]:
    """Scans reached as a join's side, not as a per-row subplan (key lookups of one row each)."""
    out = [] if in_subplan or node["Node Type"] == "ModifyTable" else [node]
    for child in node.get("Plans", []):
        out += _joined(child, in_subplan or child.get("Parent Relationship") == "SubPlan")
    return out


async def test_bind_and_settle_stay_linear_in_their_batch_when_statistics_say_nothing_is_in_flight(deps) -> None:
    pool = deps.pool
    service, ids = await _settled_table_with_some_in_flight(pool, deps)
    n = len(ids)
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # a large table: see above
        settle = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["engine.settle"], ids, ["sent"] * n, ["m"] * n,
                                     [None] * n, [NOW] * n, [service] * n, [NOW] * n, [False] * n)
        bind = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["engine.bind"], ids, [service] * n,
                                   ["a@b.example"] * n, [NOW] * n, 1)
    # Before: with `bound` estimated at one row, the ids not bound were found by a nested loop
    # over the bound rows per id (n² / 2 comparisons per bind); now a hashed subplan.
    loops = [c for p in _nodes(bind) if p["Node Type"] == "Nested Loop" for c in p.get("Plans", [])]
    assert not [c for c in loops if c.get("CTE Name") == "bound"], "a nested loop over the bound rows"
    # Before: the settle joined campaigns, planned as a nested loop reading every campaign per
    # result; now a requeued row's campaign is looked up by key in a subplan, and no other is read.
    changed = next(p for p in _nodes(settle) if p["Node Type"] == "ModifyTable" and p["Relation Name"] == "subtasks")
    assert not [p for p in _joined(changed) if p.get("Relation Name") == "campaigns"], "campaigns joined per result"
