"""Memory: resident size of one engine process holding a large fleet in its hot state.

    .venv/bin/python bench/memory.py [--services 10000] [--users 100000] [--campaigns 10000] [--per-campaign 200]
                                     [--keep | --database URL] [--trace]

Builds the fleet in a fresh database (services at a one-hour interval that have just sent, so
nothing is dispatched while the figure is taken; users each mapped to one service; one running
campaign for each of the first `--campaigns` users, with its subtasks), starts the engine as
`edm serve` would (leader, hot state loaded, every campaign's claim buffer filled), waits for
the claims to go quiet and prints RSS beside the same process before the engine started.
`--keep` leaves the seeded database for later runs (`--database URL` runs on it without seeding,
within the hour its services wait): before/after comparisons on the same rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
import tracemalloc
from datetime import datetime, timezone

import uvloop
from cryptography.fernet import Fernet
from support import fresh_database

from engine.dispatch.leader import Engine, EngineOptions
from engine.domain.quota_day import parse_hhmm, quota_day_start
from engine.infra import db
from engine.infra.clock import SystemClock
from engine.infra.config import Settings
from engine.infra.gc_policy import tune_for_dispatch
from engine.infra.secret_box import SecretBox
from engine.live.events import LogSink
from engine.providers.factory import ProviderFactory


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def seed(url: str, box: SecretBox, settings: Settings, services: int, users: int, campaigns: int,
               per_campaign: int) -> None:
    now = datetime.now(timezone.utc)
    reset = parse_hhmm("02:00")
    start = quota_day_start(reset, settings.tz, now)
    sealed = box.seal({"api_user": "bench", "api_key": "bench-key-0123456789"})
    conn = await db.connect(url)
    try:
        t = time.perf_counter()
        await conn.execute(
            """INSERT INTO services (name, provider, domain, credentials, base_url, daily_quota, reset_time,
                                     send_interval, remaining_today, quota_day_start, last_request_at)
               SELECT 'svc-' || g, 'engagelab', 'mail.example.test', $1, 'http://127.0.0.1:9', 100000, $2,
                      3600, 100000, $3, now()
               FROM generate_series(1, $4) g""", sealed, reset, start, services)
        await conn.execute(
            """INSERT INTO users (username, email, password_hash, role, quota_remaining)
               SELECT 'user' || g, 'user' || g || '@example.test', 'x', 'user', 1000000 FROM generate_series(1, $1) g""",
            users)
        await conn.execute("INSERT INTO quota_log (user_id, delta, balance_after, kind, reason) "
                           "SELECT id, quota_remaining, quota_remaining, 'adjust', 'bench' FROM users")
        await conn.execute("INSERT INTO user_service_maps (user_id) SELECT id FROM users")
        await conn.execute(
            """WITH s AS (SELECT id, row_number() OVER (ORDER BY name) - 1 AS k FROM services),
                    u AS (SELECT id, row_number() OVER (ORDER BY username) - 1 AS k FROM users)
               INSERT INTO user_service_map_items (user_id, service_id)
               SELECT u.id, s.id FROM u JOIN s ON s.k = u.k % $1""", services)
        await conn.execute(
            """WITH u AS (SELECT id, username FROM users ORDER BY username LIMIT $1)
               INSERT INTO senders (user_id, name) SELECT id, 'news-' || username FROM u""", campaigns)
        await conn.execute(
            """INSERT INTO templates (user_id, name, subject, html_body, text_body)
               SELECT user_id, 't', 'Hi {{ name }}', '<p>Hello {{ name }}</p>', 'Hello {{ name }}' FROM senders""")
        await conn.execute(
            """INSERT INTO campaigns (user_id, name, sender_id, sender_name, status, total, reserved, planned,
                                      started_at)
               SELECT user_id, 'bench', id, name, 'running', $1::int, $1::int, $1::int, now() FROM senders""", per_campaign)
        await conn.execute(
            """INSERT INTO campaign_templates (campaign_id, position, template_id)
               SELECT c.id, 0, t.id FROM campaigns c JOIN templates t ON t.user_id = c.user_id""")
        await conn.execute(
            """INSERT INTO subtasks (campaign_id, seq, email, template_id)
               SELECT ct.campaign_id, g, 'r' || g || '@x.test', ct.template_id
               FROM campaign_templates ct, generate_series(1, $1) g""", per_campaign)
        await conn.execute("ANALYZE")
        print(f"seeded {services:,} services, {users:,} users, {campaigns:,} running campaigns × "
              f"{per_campaign} subtasks in {time.perf_counter() - t:.1f} s")
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({})
    box_key = Fernet.generate_key()
    box = SecretBox(box_key)
    async with contextlib.AsyncExitStack() as stack:
        if args.database:
            url = args.database
            box = SecretBox(args.key.encode())
        else:
            url = await stack.enter_async_context(fresh_database(keep=args.keep))
            await seed(url, box, settings, args.services, args.users, args.campaigns, args.per_campaign)
            if args.keep:
                print(f"kept: --database {url} --key {box_key.decode()}")
        gc.collect()
        if args.trace:
            tracemalloc.start(1)
        before = rss_mb()
        pool = await db.create_pool(url, size=4)
        tune_for_dispatch()
        providers = ProviderFactory()
        engine = Engine(settings, pool, SystemClock(), providers, box, LogSink(), EngineOptions())
        t = time.perf_counter()
        await engine.start()
        await engine.wait_leader(900)  # loading 10k campaigns on a busy 2-core machine
        # Quiet: every campaign's buffer claimed (the claimer has nothing left to want).
        while True:
            await asyncio.sleep(1.0)
            state = engine.state
            if all(c.buffer or c.exhausted for c in state.campaigns.values()) and \
                    len(state.campaigns) >= args.campaigns:
                break
        loaded = time.perf_counter() - t
        gc.collect()
        after = rss_mb()
        buffered = sum(len(c.buffer) for c in engine.state.campaigns.values())
        print(f"engine up in {loaded:.1f} s: {len(engine.state.services):,} services, "
              f"{len(engine.state.users):,} users, {len(engine.state.campaigns):,} campaigns, "
              f"{buffered:,} claimed subtasks in memory")
        if args.trace:
            top = tracemalloc.take_snapshot().statistics("lineno")[:12]
            print("largest allocation sites (tracemalloc):")
            for stat in top:
                print(f"  {stat.size / 2**20:7.1f} MB  {stat.count:>9,}  {stat.traceback[0]}")
        print(f"RSS: {before:.0f} MB before the engine started, {after:.0f} MB with the fleet loaded "
              f"(+{after - before:.0f} MB); goal ≤ 300 MB")
        await engine.stop()
        await providers.close()
        await pool.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=10_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--campaigns", type=int, default=10_000)
    p.add_argument("--per-campaign", type=int, default=200)
    p.add_argument("--keep", action="store_true", help="keep the seeded database (prints its URL and key)")
    p.add_argument("--database", help="an earlier --keep run's database: no seeding")
    p.add_argument("--key", default="", help="the Fernet key printed with --keep")
    p.add_argument("--trace", action="store_true", help="also print the largest allocation sites (slower)")
    uvloop.run(main(p.parse_args()))  # as `edm serve` runs
