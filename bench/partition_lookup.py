"""Would declarative partitioning of `subtasks` by month cost the hot statements? Measured, one run.

    .venv/bin/python bench/partition_lookup.py [--rows 2000000] [--partitions 24] [--rounds 200]

Bind, settle, webhooks and recipient links find a subtask by its id alone. A table partitioned
by month (so a month of finished campaigns could be detached and dropped) cannot keep `id`
unique on its own: its primary key must carry the partition key, `(id, month)`, and a lookup by id
cannot be pruned, so it probes every partition's index. This builds the same rows twice on a
fresh database, as a plain table and as `--partitions` monthly range partitions, and times
the bind's shape (1,000 ids through unnest, UPDATE … FROM) and a one-row lookup (a webhook's
match) on each, interleaved, printing milliseconds per statement and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

import asyncpg
from support import fresh_database

from engine.infra import db

SHAPE = """(id uuid NOT NULL DEFAULT gen_random_uuid(), month date NOT NULL, campaign_id uuid NOT NULL,
            seq int NOT NULL, status text NOT NULL, service_id uuid, attempted_at timestamptz)"""

BIND = """UPDATE {t} s SET status = 'sending', attempted_at = now()
          FROM unnest($1::uuid[]) AS b(id) WHERE s.id = b.id AND s.status = 'pending'"""
UNBIND = "UPDATE {t} SET status = 'pending', attempted_at = NULL WHERE id = ANY($1::uuid[])"
MATCH = "SELECT id, campaign_id, status FROM {t} WHERE id = $1"


async def build(c: asyncpg.Connection, rows: int, partitions: int) -> None:
    await c.execute(f"CREATE TABLE plain {SHAPE}")
    await c.execute("ALTER TABLE plain ADD PRIMARY KEY (id)")
    await c.execute(f"CREATE TABLE parted {SHAPE} PARTITION BY RANGE (month)")
    await c.execute("ALTER TABLE parted ADD PRIMARY KEY (id, month)")
    for m in range(partitions):
        await c.execute(
            f"CREATE TABLE parted_{m} PARTITION OF parted FOR VALUES FROM "
            f"(date '2025-01-01' + interval '{m} month') TO (date '2025-01-01' + interval '{m + 1} month')")
    fill = """INSERT INTO {t} (month, campaign_id, seq, status)
              SELECT date '2025-01-01' + ((g % $2) || ' month')::interval, md5((g / 1000)::text)::uuid, g, 'pending'
              FROM generate_series(1, $1) g"""
    for t in ("plain", "parted"):
        await c.execute(fill.format(t=t), rows, partitions)
    await c.execute("VACUUM ANALYZE")


async def main(args: argparse.Namespace) -> None:
    async with fresh_database() as url:
        conn = await db.connect(url)
        await build(conn, args.rows, args.partitions)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM plain")]
        pids = [r["id"] for r in await conn.fetch("SELECT id FROM parted")]
        times: dict[str, list[float]] = {k: [] for k in ("bind plain", "bind parted", "match plain", "match parted")}
        rnd = random.Random(1)
        for _ in range(args.rounds):
            for t, pool in (("plain", ids), ("parted", pids)):
                batch: list[uuid.UUID] = rnd.sample(pool, 1000)
                s = time.perf_counter()
                await conn.execute(BIND.format(t=t), batch)
                times[f"bind {t}"].append(time.perf_counter() - s)
                await conn.execute(UNBIND.format(t=t), batch)
                s = time.perf_counter()
                for one in batch[:20]:
                    await conn.fetchrow(MATCH.format(t=t), one)
                times[f"match {t}"].append((time.perf_counter() - s) / 20)
        plan = await conn.fetch("EXPLAIN " + MATCH.format(t="parted"), pids[0])
        await conn.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"rows    : {args.rows:,} in each table; parted = {args.partitions} monthly range partitions, "
          f"primary key (id, month)")
    print(f"bind    : 1,000 ids by id: plain {med['bind plain']:.2f} ms, partitioned {med['bind parted']:.2f} ms "
          f"({med['bind parted'] / med['bind plain']:.1f}x)")
    print(f"match   : one id: plain {med['match plain']:.3f} ms, partitioned {med['match parted']:.3f} ms "
          f"({med['match parted'] / med['match plain']:.1f}x)")
    scans = sum(1 for r in plan if "Index" in r[0] and "Scan" in r[0])
    print(f"plan    : a lookup by id on the partitioned table probes {scans} partition indexes (no pruning)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--partitions", type=int, default=24)
    p.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(p.parse_args()))
