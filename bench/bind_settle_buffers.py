"""EXPLAIN (ANALYZE, BUFFERS, WAL) of 1,000-row binds and settles on a given database, per id kind.

    .venv/bin/python bench/bind_settle_buffers.py URL [--rounds 8]

URL: a database left by `bench/large_table.py --keep` (the big table) or any migrated one. Two
running campaigns get `rounds` × 1,000 pending subtasks each, one with random ids
(gen_random_uuid(), as before migration 0012) and one with time-ordered ids (uuid_v7()); their
binds and settles (the engine's statements, sql/queries/engine.sql) alternate batch by batch, so
both see the same cache and checkpoints. Prints per 1,000 rows: time, shared buffers hit / read /
dirtied, WAL records, full-page images and bytes. The rows are deleted and the table vacuumed after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from datetime import datetime, timezone
from typing import Any

from support import ROOT  # noqa: F401  (puts the project on the path)

from engine.infra import db
from engine.infra.queries import Q

BATCH = 1000
IDS = {"random (v4)": "gen_random_uuid()", "time-ordered (v7)": "uuid_v7()"}
KEYS = ["Shared Hit Blocks", "Shared Read Blocks", "Shared Dirtied Blocks", "WAL Records", "WAL FPI", "WAL Bytes"]


def figures(raw: Any) -> dict[str, float]:
    top = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    return {k: top["Plan"].get(k, 0) for k in KEYS} | {"ms": top["Execution Time"]}


async def main(args: argparse.Namespace) -> None:
    conn = await db.connect(args.url)
    await conn.execute("VACUUM subtasks")
    epoch = await conn.fetchval("UPDATE engine_leader SET expires_at = now() + interval '1 hour' RETURNING epoch")
    if epoch is None:
        epoch = await conn.fetchval("INSERT INTO engine_leader (epoch, holder, since, renewed_at, expires_at) "
                                    "VALUES (1, 'bench', now(), now(), now() + interval '1 hour') RETURNING epoch")
    user_id, sender = await conn.fetchrow("SELECT user_id, name FROM senders ORDER BY name LIMIT 1")
    template_id = await conn.fetchval("SELECT id FROM templates WHERE user_id = $1", user_id)
    services = [r["id"] for r in await conn.fetch("SELECT id FROM services")]
    n = args.rounds * BATCH
    campaigns, cursors = {}, {}
    for kind, default in IDS.items():
        campaigns[kind] = await conn.fetchval(
            "INSERT INTO campaigns (user_id, name, sender_name, status, reserved, planned, total, started_at) "
            "VALUES ($1, 'buffers', $2, 'running', $3::int, $3::int, $3::int, now()) RETURNING id", user_id, sender, n)
        await conn.execute(f"INSERT INTO subtasks (id, campaign_id, seq, email, template_id) "
                           f"SELECT {default}, $1, g, 'r' || g || '@buffers.test', $2 FROM generate_series(1, $3) g",
                           campaigns[kind], template_id, n)
        cursors[kind] = 0
    seen: dict[tuple[str, str], list[dict[str, float]]] = {(k, s): [] for k in IDS for s in ("bind", "settle")}
    for round_ in range(args.rounds):
        for kind in (list(IDS) if round_ % 2 == 0 else list(reversed(IDS))):
            rows = await conn.fetch("SELECT id, seq FROM subtasks WHERE campaign_id = $1 AND seq > $2 "
                                    "ORDER BY seq LIMIT $3", campaigns[kind], cursors[kind], BATCH)  # a claim
            cursors[kind] = rows[-1]["seq"]
            ids, now = [r["id"] for r in rows], datetime.now(timezone.utc)
            svc = [random.choice(services) for _ in ids]
            seen[kind, "bind"].append(figures(await conn.fetchval(
                "EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) " + Q["engine.bind"],
                ids, svc, ["news@mail.example.test"] * BATCH, [now] * BATCH, epoch)))
            seen[kind, "settle"].append(figures(await conn.fetchval(
                "EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) " + Q["engine.settle"],
                ids, ["sent"] * BATCH, ["m"] * BATCH, [None] * BATCH, [now] * BATCH, svc, [now] * BATCH,
                [False] * BATCH)))
    for (kind, step), runs in seen.items():
        avg = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
        hit, read = avg["Shared Hit Blocks"], avg["Shared Read Blocks"]
        print(f"{step:6} {kind:17}: {avg['ms']:6.1f} ms per {BATCH:,}; buffers hit {hit:6,.0f} read {read:5,.0f} "
              f"({hit / max(hit + read, 1):.1%} hits) dirtied {avg['Shared Dirtied Blocks']:5,.0f}; WAL "
              f"{avg['WAL Records']:5,.0f} records, {avg['WAL FPI']:5,.0f} full pages, {avg['WAL Bytes'] / 1e6:.1f} MB")
    for campaign_id in campaigns.values():
        await conn.execute("DELETE FROM subtasks WHERE campaign_id = $1", campaign_id)
        await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)
    await conn.execute("VACUUM subtasks")
    await conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("--rounds", type=int, default=8)
    asyncio.run(main(p.parse_args()))
