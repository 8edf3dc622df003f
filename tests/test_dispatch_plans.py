"""The bind and the settle reach subtasks by primary key (or, for the settle, the small index of
rows in flight): their cost is their batch's, not the campaign's or the table's, whether the
statistics are fresh or were taken before the fan-out (a new install, a first big campaign).

The bind used to turn its "campaign still active" check into a join that read every pending row
of the active campaigns through the (campaign_id, seq) key, once per tick."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

import pytest

from engine.infra.queries import Q
from tests.engine_support import make_campaign, make_user

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
PER_CAMPAIGN = 20_000


def _nodes(plan: dict) -> list[dict]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_nodes(child))
    return out


async def _fleet(pool, *, stale: bool) -> tuple[list[uuid.UUID], uuid.UUID]:
    """Two running campaigns of PER_CAMPAIGN subtasks; returns the first 1,000 ids and a service."""
    if stale:
        await pool.execute("ANALYZE subtasks")  # statistics of the empty table, as before a fan-out
    for n in range(2):
        user = await make_user(pool, quota=PER_CAMPAIGN)
        campaign = await make_campaign(pool, user, planned=PER_CAMPAIGN)
        template = await pool.fetchval("SELECT template_id FROM campaign_templates WHERE campaign_id = $1", campaign)
        await pool.execute("UPDATE campaigns SET status = 'running' WHERE id = $1", campaign)
        await pool.execute(
            "INSERT INTO subtasks (campaign_id, seq, email, template_id) "
            "SELECT $1, g, 'r' || g || '@example.net', $2 FROM generate_series(1, $3) g",
            campaign, template, PER_CAMPAIGN)
    service = await pool.fetchval(
        "INSERT INTO services (name, provider, domain, credentials, daily_quota, reset_time, send_interval, "
        "remaining_today, quota_day_start) VALUES ('s', 'engagelab', 'd.test', '\\x00', 10, '00:00', 1, 10, $1) "
        "RETURNING id", NOW)
    if not stale:
        # Most of the table settled, as in a long-lived install; statistics up to date.
        await pool.execute("UPDATE subtasks SET status = 'sent' WHERE seq > 2000")
        await pool.execute("ANALYZE subtasks")
    ids = [r[0] for r in await pool.fetch("SELECT id FROM subtasks WHERE status = 'pending' ORDER BY id LIMIT 1000")]
    return ids, service


async def _plan(pool, sql: str, *args, no_seqscan: bool = False) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        if no_seqscan:
            # What a large table leaves the planner (tests/test_large_table_plans.py): on these 40k
            # rows a whole-table read is a fair choice; on millions it is out of the question, and
            # the choice left is between the primary key and an index of the in-flight rows.
            await conn.execute("SET LOCAL enable_seqscan = off")
        raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


@pytest.mark.parametrize("stale", [True, False], ids=["stats-before-fanout", "stats-fresh"])
async def test_bind_reaches_subtasks_by_primary_key(deps, stale: bool) -> None:
    ids, service = await _fleet(deps.pool, stale=stale)
    n = len(ids)
    plan = await _plan(deps.pool, Q["engine.bind"], ids, [service] * n, ["a@d.test"] * n, [NOW] * n, 1)
    update = next(p for p in _nodes(plan) if p.get("Node Type") == "ModifyTable")
    scans = [p for p in _nodes(update) if p.get("Relation Name") == "subtasks" and p is not update]
    assert scans, update
    for scan in scans:
        # One probe of the primary key per bound id: never a walk of the campaigns' rows.
        assert scan["Node Type"] == "Index Scan" and scan["Index Name"] == "subtasks_pkey", scan
        assert "id =" in scan["Index Cond"], scan
    assert not any(p.get("Relation Name") == "services" for p in _nodes(plan)), "a bind writes no services row"


@pytest.mark.parametrize("n", [1000, 5000], ids=["batch-1000", "backlog-5000"])
@pytest.mark.parametrize("stale", [True, False], ids=["stats-before-fanout", "stats-fresh"])
async def test_settle_probes_the_primary_key_once_per_result(deps, stale: bool, n: int) -> None:
    """Statistics taken before the fan-out say no row is `sending`: the old settle then read the
    whole table once per result (80 s for 2,000 results of a 120k table); fresh ones sent it
    through a campaign's rows. Now each result is one probe of the primary key, and the update
    takes the probed row by its ctid, whatever the batch's size (at 5,000 the planner hashed the
    whole table until the settle's transaction ruled sequential scans out: engine.settle_plan)."""
    ids, service = await _fleet(deps.pool, stale=stale)
    more = [r[0] for r in await deps.pool.fetch(
        "SELECT id FROM subtasks WHERE status = 'pending' AND NOT id = ANY($1) ORDER BY id LIMIT $2", ids, n - len(ids))]
    ids = ids + more
    await deps.pool.execute("UPDATE subtasks SET status = 'sending', service_id = $2, from_address = 'news@mail.example.com'"
                            " WHERE id = ANY($1)", ids, service)
    if not stale:
        await deps.pool.execute("ANALYZE subtasks")
    async with deps.pool.acquire() as conn, conn.transaction():
        await conn.execute(Q["engine.settle_plan"])
        raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + Q["engine.settle"], ids, ["sent"] * n, ["m"] * n,
                                  [None] * n, [NOW] * n, [service] * n, [NOW] * n, [False] * n)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = [p for p in _nodes(plan) if p.get("Relation Name") == "subtasks" and p["Node Type"] != "ModifyTable"]
    probes = [p for p in scans if p["Node Type"] == "Index Scan"]
    assert len(probes) == 1 and probes[0]["Index Name"] == "subtasks_pkey", scans
    assert probes[0]["Index Cond"] == "(id = r.id)", probes[0]  # one probe per result, by its id
    loop = next(p for p in _nodes(plan) if probes[0] in p.get("Plans", []))
    assert loop["Node Type"] == "Nested Loop" and loop["Plans"][0]["Node Type"] == "Function Scan", loop
    tids = [p for p in scans if p["Node Type"] == "Tid Scan"]
    # PostgreSQL 15 prints the condition as `(ctid = h.tid)`, 18 as `(h_1.tid = ctid)`.
    assert len(tids) == 1 and re.fullmatch(r"\((ctid = \w+\.tid|\w+\.tid = ctid)\)", tids[0]["TID Cond"]), scans
    assert len(scans) == 2, scans  # nothing else reads subtasks: no walk of any index or the table
    assert not any(p.get("Relation Name") == "services" for p in _nodes(plan)), "a settle writes no counters"
