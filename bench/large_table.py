"""Dispatch with 20M settled subtasks already in the table vs an empty table, in one run.

    .venv/bin/python bench/large_table.py [--rows 20000000] [--services 12000] [--subtasks 120000]
                                          [--users 4] [--archive] [--keep]

The dispatch run is bench/dispatch.py's (its `seed` and `run_engine`, null provider, every
service at 1 s) on three fresh databases of the same server: empty, then one holding `--rows`
settled subtasks of 200 old completed campaigns, then empty again (the two empty runs bound the
drift of a shared machine). The big table is filled with INSERT … SELECT generate_series over two
connections with the subtasks indexes dropped, then the indexes are rebuilt and the table
vacuumed and analysed, as autovacuum would have left a table that grew over months. It prints
both rates, the ratio, and the table's size per million rows. --archive also times `edm archive`
(engine/store/retention.py) moving every old campaign out of the hot table, right after the 20M run.
--keep leaves the big database in place (its URL is printed) for EXPLAIN; drop it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from dispatch import NullProviders, run_engine, seed
from support import ROOT, fresh_database

from engine.infra import db
from engine.infra.config import Settings
from engine.infra.secret_box import SecretBox

OLD_CAMPAIGNS = 200


async def subtasks_indexes(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """The statements that rebuild the subtasks constraints and indexes exactly as migrated."""
    constraints = [f"ALTER TABLE subtasks ADD CONSTRAINT {r['conname']} {r['def']}" for r in await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE conrelid = 'subtasks'::regclass AND contype IN ('p', 'u')")]
    indexes = [r["indexdef"] for r in await conn.fetch(
        "SELECT indexdef FROM pg_indexes i WHERE tablename = 'subtasks' AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.conrelid = 'subtasks'::regclass)")]
    return constraints, indexes


async def prefill(url: str, rows: int) -> float:
    """`rows` settled subtasks of OLD_CAMPAIGNS completed campaigns of 30-90 days ago."""
    t = time.perf_counter()
    conn = await db.connect(url)
    user_id, sender = await conn.fetchrow("SELECT user_id, name FROM senders ORDER BY name LIMIT 1")
    template_id = await conn.fetchval("SELECT id FROM templates WHERE user_id = $1", user_id)
    services = [r["id"] for r in await conn.fetch("SELECT id FROM services ORDER BY name")]
    per = rows // OLD_CAMPAIGNS
    old = [r["id"] for r in await conn.fetch(
        """INSERT INTO campaigns (user_id, name, sender_name, status, reserved, planned, total, sent_count,
                                  started_at, finished_at, created_at, updated_at)
           SELECT $1, 'old ' || g, $2, 'completed', 0, $3, $3, $3, ts, ts + interval '5 hours', ts, ts
           FROM generate_series(1, $4) g, LATERAL (SELECT now() - interval '90 days' + g * interval '7 hours' AS ts) t
           RETURNING id""", user_id, sender, per, OLD_CAMPAIGNS)]
    constraints, indexes = await subtasks_indexes(conn)
    for name in await conn.fetch("SELECT conname FROM pg_constraint WHERE conrelid = 'subtasks'::regclass "
                                 "AND contype IN ('p', 'u')"):
        await conn.execute(f"ALTER TABLE subtasks DROP CONSTRAINT {name['conname']}")
    for name in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'subtasks'"):
        await conn.execute(f"DROP INDEX {name['indexname']}")
    await conn.close()

    async def fill(part: list[Any]) -> None:
        c = await db.connect(url)
        await c.execute("SET synchronous_commit = off")
        for campaign_id in part:
            await c.execute(
                """INSERT INTO subtasks (campaign_id, seq, contact_id, email, template_id, status, service_id,
                                         from_address, attempted_at, settled_at, message_id)
                   SELECT $1, g, gen_random_uuid(), 'r' || g || '@old.example.test', $2, 'sent',
                          ($3::uuid[])[1 + g % cardinality($3::uuid[])], $4 || '@mail.example.test',
                          x.started_at + g * interval '150 ms', x.started_at + g * interval '150 ms' + interval '40 ms',
                          md5(g::text)
                   FROM generate_series(1, $5) g, (SELECT started_at FROM campaigns WHERE id = $1) x""",
                campaign_id, template_id, services, sender, per)
        await c.close()

    await asyncio.gather(fill(old[0::2]), fill(old[1::2]))
    conn = await db.connect(url)
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for statement in constraints + indexes:
        await conn.execute(statement)
    await conn.execute("VACUUM (ANALYZE) subtasks")
    # Written out before the dispatch starts: a table that grew over months is at rest on disk,
    # not gigabytes of dirty pages that the next checkpoint writes during the measured run.
    await conn.execute("CHECKPOINT")
    await conn.close()
    return time.perf_counter() - t


async def one_run(settings: Settings, box: SecretBox, args: argparse.Namespace, rows: int,
                  keep: bool = False) -> dict[str, Any]:
    async with fresh_database(keep=keep) as url:
        pool = await db.create_pool(url, size=2)
        campaigns = await seed(pool, box, settings, args.services, args.subtasks, args.users, "http://127.0.0.1:9")
        await pool.close()
        out: dict[str, Any] = {"url": url}
        if rows:
            out["prefill_s"] = await prefill(url, rows)
            conn = await db.connect(url)
            out["heap"] = await conn.fetchval("SELECT pg_relation_size('subtasks')")
            out["total"] = await conn.fetchval("SELECT pg_total_relation_size('subtasks')")
            await conn.close()
        out["rate"] = await run_engine(url, settings, box, NullProviders(), campaigns, args.subtasks)
        if rows and args.archive:
            out["archive"] = await archive_all(url)
    return out


async def archive_all(url: str) -> tuple[int, float]:
    """Move every finished campaign older than a day out of the hot table; (rows, seconds)."""
    from engine.store.retention import archive_finished

    pool = await db.create_pool(url, size=2)
    t = time.perf_counter()
    now = datetime.now(timezone.utc)
    report = await archive_finished(pool, now - timedelta(days=1), now)
    elapsed = time.perf_counter() - t
    await pool.close()
    return report.subtasks, elapsed


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, data_dir=str(ROOT / ".edm" / "bench"))
    box = SecretBox.from_settings("", settings.data_path)
    empty1 = await one_run(settings, box, args, 0)
    print(f"empty   : {empty1['rate']:,.0f} subtasks/s", flush=True)
    big = await one_run(settings, box, args, args.rows, keep=args.keep)
    print(f"prefill : {args.rows:,} settled rows in {big['prefill_s']:.0f} s "
          f"({args.rows / big['prefill_s']:,.0f} rows/s, indexes rebuilt, vacuumed)", flush=True)
    print(f"{args.rows / 1e6:g}M rows: {big['rate']:,.0f} subtasks/s", flush=True)
    empty2 = await one_run(settings, box, args, 0)
    print(f"empty   : {empty2['rate']:,.0f} subtasks/s (again, after)")
    mean = (empty1["rate"] + empty2["rate"]) / 2
    per_m = 1e6 / args.rows
    print(f"ratio   : {big['rate'] / mean:.2f}x of the empty table's mean "
          f"({big['rate'] / empty1['rate']:.2f}x / {big['rate'] / empty2['rate']:.2f}x of each); "
          f"{args.services:,} services at 1 s, {args.users} users, {args.subtasks:,} subtasks, null provider")
    print(f"size    : subtasks {big['total'] / 2**30:.1f} GiB with indexes "
          f"({big['heap'] * per_m / 2**20:,.0f} MiB heap + {(big['total'] - big['heap']) * per_m / 2**20:,.0f} MiB "
          f"indexes per million rows)")
    if "archive" in big:
        moved, seconds = big["archive"]
        print(f"archive : {moved:,} subtasks of {OLD_CAMPAIGNS} campaigns moved in {seconds:.0f} s "
              f"({moved / seconds:,.0f} rows/s)")
    if args.keep:
        print(f"kept    : {big['url']} (drop it: DROP DATABASE … WITH (FORCE))")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=20_000_000)
    # The dispatch figures: enough services that the engine, not their intervals, is the limit.
    p.add_argument("--services", type=int, default=12_000)
    p.add_argument("--subtasks", type=int, default=120_000)
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--archive", action="store_true", help="time `edm archive` over the old campaigns")
    p.add_argument("--keep", action="store_true", help="keep the big database for EXPLAIN")
    asyncio.run(main(p.parse_args()))
