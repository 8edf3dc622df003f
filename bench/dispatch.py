"""Dispatch: subtasks settled per second by the engine, beside a bare asyncpg claim-and-settle
loop and (when installed: `pip install -e '.[bench]'`) pgqueuer's no-op drain of as many jobs, back
to back on the same server in the same run; optionally through HTTP to a fake ESP process.

    .venv/bin/python bench/dispatch.py [--services 5000] [--subtasks 100000] [--users 10] [--http] [--groups N]

The engine runs with every service at a 1 s interval and an in-process provider that answers
`sent` at once (the null provider), so the figure is the engine's own ceiling: claiming,
routing, fairness, the `sending` write before each request and the batched settlement. The bare
loop does only the database part (claim with SKIP LOCKED, mark sending, mark sent) as fast as it
can, which is the limit the engine can approach. pgqueuer (janbjorge/pgqueuer) is a job queue
on the same PostgreSQL: its worker drains as many no-op jobs (dequeue with SKIP LOCKED, log the
completion), the figure a general-purpose PostgreSQL queue reaches on this machine. With --http
the provider is the real EngageLab adapter talking to `edm fake-esp` in a separate process. With --groups N, N domain groups hold
the recipients' domains (user k's recipients are at `uk.test`) with limits far above what the run
sends: the cost of the domain-limit check in the pick, not of waiting for a domain.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from support import ROOT, fresh_database

from edm.embedded import free_port
from engine.dispatch.leader import Engine, EngineOptions
from engine.domain.quota_day import parse_hhmm, quota_day_start
from engine.infra import db
from engine.infra.clock import SystemClock
from engine.infra.config import Settings
from engine.infra.gc_policy import tune_for_dispatch
from engine.infra.secret_box import SecretBox
from engine.live.events import LogSink
from engine.providers.factory import ProviderFactory
from engine.providers.null import NullProvider
from engine.store import quota_ledger


class NullProviders:
    """Every service sends through one in-process provider that answers `sent` at once."""

    def __init__(self) -> None:
        self.provider = NullProvider()

    def build(self, kind: str, credentials: Mapping[str, Any], base_url: str | None = None) -> NullProvider:
        return self.provider

    async def close(self) -> None:
        pass


async def seed(pool: Any, box: SecretBox, settings: Settings, services: int, subtasks: int, users: int,
               base_url: str) -> list[uuid.UUID]:
    now = datetime.now(timezone.utc)
    reset = parse_hhmm("02:00")
    start = quota_day_start(reset, settings.tz, now)
    sealed = box.seal({"api_user": "bench", "api_key": "bench-key-0123456789"})
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO services (name, provider, domain, credentials, base_url, daily_quota, reset_time,
                                     send_interval, remaining_today, quota_day_start)
               SELECT 'svc-' || g, 'engagelab', 'mail.example.test', $1, $2, 10000000, $3, 1, 10000000, $4
               FROM generate_series(1, $5) g""", sealed, base_url, reset, start, services)
        campaigns = []
        per_user = subtasks // users
        for u in range(users):
            user_id = await conn.fetchval("INSERT INTO users (username, email, password_hash, role) "
                                          "VALUES ($1, $1 || '@example.test', 'x', 'user') RETURNING id", f"user{u}")
            async with conn.transaction():
                await quota_ledger.apply(conn, user_id, per_user, "adjust", reason="bench")
            await conn.execute("INSERT INTO user_service_maps (user_id) VALUES ($1)", user_id)
            await conn.execute("INSERT INTO user_service_map_items (user_id, service_id) SELECT $1, id FROM services",
                               user_id)
            await conn.execute("INSERT INTO contacts (user_id, email, name) SELECT $1, 'r' || g || '@u' || $2 || '.test', "
                               "'R' || g FROM generate_series(1, $3) g", user_id, str(u), per_user)
            sender_id = await conn.fetchval("INSERT INTO senders (user_id, name) VALUES ($1, $2) RETURNING id",
                                            user_id, f"news{u}")
            template_id = await conn.fetchval("INSERT INTO templates (user_id, name, subject, html_body, text_body) "
                                              "VALUES ($1, 't', 'Hi {{ name }}', '<p>Hi {{ name }}</p>', 'Hi') "
                                              "RETURNING id", user_id)
            async with conn.transaction():
                campaign_id = await conn.fetchval(
                    "INSERT INTO campaigns (user_id, name, sender_id, sender_name, reserved, planned, scheduled_at) "
                    "VALUES ($1, 'bench', $2, $3, $4::bigint, $4::int, $5) RETURNING id",
                    user_id, sender_id, f"news{u}", per_user, datetime(2100, 1, 1, tzinfo=timezone.utc))
                await conn.execute("INSERT INTO campaign_templates VALUES ($1, 0, $2)", campaign_id, template_id)
                await quota_ledger.apply(conn, user_id, -per_user, "reserve", campaign_id=campaign_id, reason="bench")
            campaigns.append(campaign_id)
        await conn.execute("ANALYZE")
    return campaigns


async def seed_groups(pool: Any, groups: int, users: int) -> None:
    """`groups` domain groups splitting the users' recipient domains (and a few that match nobody)."""
    for g in range(groups):
        domains = [f"u{u}.test" for u in range(users) if u % groups == g] or [f"nobody{g}.test"]
        gid = await pool.fetchval("INSERT INTO domain_groups (name, per_minute, per_day, per_service) "
                                  "VALUES ($1, 100000000, 100000000, $2) RETURNING id", f"g{g}", g % 2 == 1)
        await pool.execute("INSERT INTO domain_group_domains (domain, group_id, position) "
                           "SELECT d, $1, p FROM unnest($2::text[]) WITH ORDINALITY AS x(d, p)", gid, domains)


async def run_engine(url: str, settings: Settings, box: SecretBox, providers: Any, campaigns: list[uuid.UUID],
                     total: int) -> float:
    pool = await db.create_pool(url, size=8)
    tune_for_dispatch()  # as edm serve does
    engine = Engine(settings, pool, SystemClock(), providers, box, LogSink(),
                    EngineOptions(claim_batch=1000, settle_batch=2000))
    await engine.start()
    await engine.wait_leader(30)
    # Make the campaigns due now: the fan-out is measured by bench/fanout.py, not here.
    await pool.execute("UPDATE campaigns SET scheduled_at = now() WHERE id = ANY($1)", campaigns)
    await engine.campaign_saved(campaigns[0])
    started = None
    while True:
        # The campaigns' counters (moved by each settle), not a count over subtasks: a scan of the
        # table every 50 ms would take CPU from the engine it measures, and the table may hold
        # millions of older rows.
        settled = await pool.fetchval("SELECT sum(sent_count + failed_count) FROM campaigns WHERE id = ANY($1)",
                                      campaigns)
        if started is None and settled:
            started = time.perf_counter()
        if settled >= total:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    first, last = await pool.fetchrow("SELECT min(attempted_at), max(settled_at) FROM subtasks "
                                      "WHERE campaign_id = ANY($1)", campaigns)
    await engine.stop()
    await pool.close()
    return total / max((last - first).total_seconds(), elapsed, 1e-9)


async def run_bare_loop(url: str, total: int) -> float:
    """Two connections, as the engine has: one claims 1000 with SKIP LOCKED from the last key and
    marks them sending, the other marks each batch sent while the next is claimed. Nothing else."""
    claim_conn, settle_conn = await db.connect(url), await db.connect(url)
    conn = claim_conn
    campaign_id = await conn.fetchval(
        "INSERT INTO campaigns (user_id, name, sender_name) SELECT id, 'bare', 'x' FROM users LIMIT 1 RETURNING id")
    template_id = await conn.fetchval("SELECT id FROM templates LIMIT 1")
    await conn.execute("INSERT INTO subtasks (campaign_id, seq, email, template_id) "
                       "SELECT $1, g, 'b' || g || '@x.test', $2 FROM generate_series(1, $3) g",
                       campaign_id, template_id, total)
    service_id = await conn.fetchval("SELECT id FROM services LIMIT 1")
    await conn.execute("ANALYZE subtasks")
    batches: asyncio.Queue[list[uuid.UUID] | None] = asyncio.Queue(maxsize=2)

    async def claim() -> None:
        last, done = 0, 0
        while done < total:
            async with claim_conn.transaction():
                rows = await claim_conn.fetch(
                    "SELECT id, seq FROM subtasks WHERE campaign_id = $1 AND status = 'pending' AND seq > $2 "
                    "ORDER BY seq LIMIT 1000 FOR UPDATE SKIP LOCKED", campaign_id, last)
                ids = [r["id"] for r in rows]
                last = rows[-1]["seq"]
                await claim_conn.execute("UPDATE subtasks SET status = 'sending', service_id = $2, "
                                         "from_address = 'x@y', attempted_at = now() WHERE id = ANY($1)",
                                         ids, service_id)
            await batches.put(ids)
            done += len(ids)
        await batches.put(None)

    async def settle() -> None:
        while (ids := await batches.get()) is not None:
            await settle_conn.execute("UPDATE subtasks SET status = 'sent', settled_at = now(), message_id = 'm' "
                                      "WHERE id = ANY($1)", ids)

    t = time.perf_counter()
    await asyncio.gather(claim(), settle())
    rate = total / (time.perf_counter() - t)
    await claim_conn.close()
    await settle_conn.close()
    return rate


async def run_pgqueuer(url: str, total: int, batch: int) -> float | None:
    """pgqueuer's worker draining `total` no-op jobs (None when pgqueuer is not installed)."""
    try:
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.qm import QueueManager
        from pgqueuer.queries import Queries
        from pgqueuer.types import QueueExecutionMode
    except ImportError:
        return None
    conn = await db.connect(url)
    driver = AsyncpgDriver(conn)
    queries = Queries(driver)
    await queries.install()
    for i in range(0, total, 10_000):
        n = min(10_000, total - i)
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    await conn.execute("ANALYZE")
    qm = QueueManager(queries)
    done = 0

    @qm.entrypoint("noop")
    async def noop(job: Any) -> None:
        nonlocal done
        done += 1

    t = time.perf_counter()
    await qm.run(batch_size=batch, mode=QueueExecutionMode.drain)
    rate = done / (time.perf_counter() - t)
    await conn.close()
    return rate


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, data_dir=str(ROOT / ".edm" / "bench"))
    box = SecretBox.from_settings("", settings.data_path)
    esp = None
    base_url = "http://127.0.0.1:9"
    if args.http:
        port = free_port()
        esp = subprocess.Popen([sys.executable, "-m", "edm.fake_esp", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base_url = f"http://127.0.0.1:{port}"
        await asyncio.sleep(1.5)
    try:
        async with fresh_database() as url:
            pool = await db.create_pool(url, size=2)
            campaigns = await seed(pool, box, settings, args.services, args.subtasks, args.users, base_url)
            await seed_groups(pool, args.groups, args.users)
            await pool.close()
            providers = ProviderFactory() if args.http else NullProviders()
            engine_rate = await run_engine(url, settings, box, providers, campaigns, args.subtasks)
            if args.http:
                await providers.close()
            # Same database, one after the other: the bare loop on a campaign of its own, then
            # pgqueuer's tables.
            bare_rate = await run_bare_loop(url, args.subtasks)
            pgq_rate = await run_pgqueuer(url, args.subtasks, args.pgqueuer_batch)
    finally:
        if esp is not None:
            esp.send_signal(signal.SIGTERM)
            esp.wait(10)
    what = "HTTP to the fake ESP (separate process)" if args.http else "null provider (in process)"
    print(f"engine  : {engine_rate:,.0f} subtasks/s settled; {args.services:,} services at 1 s, "
          f"{args.users} users, {args.subtasks:,} subtasks, {what}, {args.groups} domain groups")
    print(f"bare    : {bare_rate:,.0f} subtasks/s (claim 1000 SKIP LOCKED + mark sending on one connection, mark sent on another)")
    if pgq_rate is not None:
        print(f"pgqueuer: {pgq_rate:,.0f} jobs/s (no-op drain of {args.subtasks:,} jobs, batch {args.pgqueuer_batch}, "
              "pgqueuer's QueueManager on one connection)")
    else:
        print("pgqueuer: not installed (pip install -e '.[bench]')")
    print(f"ratio   : engine at {100 * engine_rate / bare_rate:.0f} % of the bare loop"
          + (f", {engine_rate / pgq_rate:.2f}x pgqueuer" if pgq_rate else "")
          + f"; ceiling set by the services: {args.services:,}/s")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=5000)
    p.add_argument("--subtasks", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--http", action="store_true")
    p.add_argument("--pgqueuer-batch", type=int, default=100, help="pgqueuer's dequeue batch size")
    p.add_argument("--groups", type=int, default=0, help="domain groups over the recipients' domains (not binding)")
    asyncio.run(main(p.parse_args()))
