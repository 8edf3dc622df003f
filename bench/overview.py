"""The overview's cost as sending grows: built from the per-minute send counters vs the scan of the
last ten minutes of subtasks it replaced, on the same database in one run.

    .venv/bin/python bench/overview.py [--services 10000] [--campaigns 1000] [--per-second 1000]

Fills a fresh database with `--services` services, `--campaigns` running campaigns of 100 users
and ten minutes of sends at `--per-second` (subtasks attempted and settled, and the send_minutes
rows the engine would have written for them), then times, interleaved, `build_overview` (what
`GET /monitor/overview` runs once per second and scope) and the old `monitor.recent` query (kept
below as the anchor), and `GET /campaigns/{id}/progress`'s query vs the old count of the
campaign's subtasks. Prints the medians and their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import fresh_database  # noqa: E402

from engine.infra import db  # noqa: E402
from engine.infra.queries import Q  # noqa: E402
from engine.live.overview import build_overview  # noqa: E402
from engine.live.progress import campaign_progress  # noqa: E402

# The overview's throughput query before migration 0010: every request of the last ten minutes.
OLD_RECENT = """
WITH recent AS (
    SELECT s.service_id, s.campaign_id, c.user_id, s.status, s.settled_at,
           least(9, floor(extract(epoch FROM $1::timestamptz - s.attempted_at) / 60))::int AS ago
    FROM services sv
    JOIN subtasks s ON s.service_id = sv.id
                   AND s.attempted_at > $1::timestamptz - interval '10 minutes'
                   AND s.attempted_at <= $1::timestamptz
    JOIN campaigns c ON c.id = s.campaign_id
)
SELECT GROUPING(service_id, campaign_id, user_id) AS grouping_set, service_id, ago, campaign_id, user_id,
       count(*) AS attempts, count(*) FILTER (WHERE ago = 0) AS last_minute,
       count(*) FILTER (WHERE status IN ('sent', 'failed') AND settled_at > $1::timestamptz - interval '5 minutes')
           AS settled_recent
FROM recent
GROUP BY GROUPING SETS ((service_id, ago), (campaign_id), (user_id))"""
# Campaign progress before: a count of every subtask of the campaign.
OLD_PROGRESS = """
SELECT c.id, count(*) FILTER (WHERE s.status = 'pending') AS pending, count(*) FILTER (WHERE s.status = 'sent') AS sent,
       count(*) FILTER (WHERE s.settled_at > $2 AND s.status IN ('sent', 'failed')) AS recent
FROM campaigns c LEFT JOIN subtasks s ON s.campaign_id = c.id WHERE c.id = $1 GROUP BY c.id"""


async def fill(url: str, services: int, campaigns: int, per_second: int, pending_per_campaign: int,
               now: datetime) -> list:
    conn = await db.connect(url)
    try:
        await conn.execute(
            "INSERT INTO users (username, email, password_hash, role) "
            "SELECT 'user' || n, 'user' || n || '@example.test', 'x', 'user' FROM generate_series(1, 100) n")
        await conn.execute(
            "INSERT INTO services (name, provider, domain, credentials, daily_quota, reset_time, send_interval, "
            "remaining_today, quota_day_start) SELECT 'svc-' || n, 'engagelab', 'd.example', 'x', 100000, '02:00', 1, "
            "100000, $1 FROM generate_series(1, $2) n", now - timedelta(hours=3), services)
        await conn.execute(
            "INSERT INTO campaigns (user_id, name, sender_name, status, total, started_at) "
            "SELECT (SELECT id FROM users ORDER BY id OFFSET n % 100 LIMIT 1), 'c' || n, 'x', 'running', $2, $1 "
            "FROM generate_series(1, $3) n", now - timedelta(hours=1), pending_per_campaign, campaigns)
        sends = per_second * 600
        # Ten minutes of sends spread over every service and campaign, plus each campaign's pending rest.
        await conn.execute(
            """INSERT INTO subtasks (campaign_id, seq, email, template_id, status, service_id, attempted_at, settled_at)
               SELECT c.id, n, 'r' || n || '@example.test', gen_random_uuid(), 'sent', s.id,
                      $1::timestamptz - (n * interval '600 seconds' / $2), $1::timestamptz - (n * interval '600 seconds' / $2)
               FROM generate_series(1, $2) n
               JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM campaigns) c ON c.k = n % $3
               JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM services) s ON s.k = n % $4""",
            now, sends, campaigns, services)
        await conn.execute(
            """INSERT INTO subtasks (campaign_id, seq, email, template_id)
               SELECT c.id, $1 + n, 'p' || n || '@example.test', gen_random_uuid()
               FROM campaigns c, generate_series(1, $2) n""", sends, pending_per_campaign)
        await conn.execute(
            """INSERT INTO send_minutes (minute, service_id, campaign_id, user_id, sent, failed)
               SELECT date_trunc('minute', s.settled_at), s.service_id, s.campaign_id, c.user_id, count(*), 0
               FROM subtasks s JOIN campaigns c ON c.id = s.campaign_id WHERE s.status = 'sent' GROUP BY 1, 2, 3, 4""")
        await conn.execute("ANALYZE")
        return [r["id"] for r in await conn.fetch("SELECT id FROM campaigns ORDER BY id LIMIT 20")]
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--campaigns", type=int, default=1_000)
    ap.add_argument("--per-second", type=int, default=1_000, help="sends per second over the last ten minutes")
    ap.add_argument("--pending", type=int, default=1_000, help="pending subtasks per campaign")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--profile", action="store_true", help="cProfile one overview build first")
    args = ap.parse_args()
    now = datetime.now(timezone.utc)
    async with fresh_database() as url:
        t = time.perf_counter()
        campaign_ids = await fill(url, args.services, args.campaigns, args.per_second, args.pending, now)
        print(f"filled in {time.perf_counter() - t:.0f} s: {args.services} services, {args.campaigns} running "
              f"campaigns, {args.per_second * 600:,} sends in the last 10 min, {args.pending} pending per campaign")
        pool = await db.create_pool(url, size=2)
        tz = ZoneInfo("Asia/Shanghai")
        timings: dict[str, list[float]] = {"overview (counters)": [], "new recent query alone": [],
                                           "old recent scan alone": [],
                                           "progress (counters)": [], "old progress count": []}
        try:
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                await build_overview(pool, now, tz, None)
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
            for _ in range(args.rounds):
                t = time.perf_counter()
                await build_overview(pool, now, tz, None)
                timings["overview (counters)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await pool.fetch(Q["monitor.recent"], now)
                timings["new recent query alone"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await pool.fetch(OLD_RECENT, now)
                timings["old recent scan alone"].append(time.perf_counter() - t)
                t = time.perf_counter()
                for cid in campaign_ids:
                    await campaign_progress(pool, cid, now)
                timings["progress (counters)"].append((time.perf_counter() - t) / len(campaign_ids))
                t = time.perf_counter()
                for cid in campaign_ids:
                    await pool.fetchrow(OLD_PROGRESS, cid, now - timedelta(minutes=5))
                timings["old progress count"].append((time.perf_counter() - t) / len(campaign_ids))
        finally:
            await pool.close()
    med = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    for k, v in med.items():
        print(f"{k:24} median {v:9.1f} ms")
    print(f"throughput query, counters / old scan:             {med['new recent query alone'] / med['old recent scan alone']:.3f}")
    print(f"whole overview build / old throughput query alone: {med['overview (counters)'] / med['old recent scan alone']:.2f}")
    print(f"progress from counters / old count:                {med['progress (counters)'] / med['old progress count']:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
