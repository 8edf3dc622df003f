"""Dispatch through HTTP: the engine against `edm fake-esp` in a separate process, beside a bare
aiohttp client sending the same number of requests to the same fake ESP in the same run.

    .venv/bin/python bench/http_dispatch.py [--services 12000] [--subtasks 60000] [--users 4]
                                            [--pool 200] [--latency-ms 0]

Every service is an EngageLab account at a 1 s interval, so the services ask for far more than
one fake ESP process answers; both sides are limited by the same fake ESP. The bare client is
the anchor: as many workers as pooled connections, each posting the EngageLab body in a loop,
nothing else. It runs before and after the engine, and the better of its two runs is the anchor.
Rates are delivered requests (answered 200) per second, counted from the fake ESP's own log
between the first arrival and the last answer. Failures are split by cause: provider-caused
(the fake ESP answered an error or a throttle) and local (the request failed on this machine:
no connection, a timeout, a network error, or a bind that went back to pending unsent).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson
import uvloop
from dispatch import seed
from support import ROOT, fresh_database

from engine.dispatch.leader import Engine, EngineOptions
from engine.infra import db
from engine.infra.clock import SystemClock
from engine.infra.config import Settings
from engine.infra.gc_policy import tune_for_dispatch
from engine.infra.secret_box import SecretBox
from engine.live.events import LogSink
from engine.providers import EngageLabTransport, ProviderFactory
from engine.providers.engagelab import basic_auth


class FakeEspProcess:
    """`python -m edm.fake_esp` on a free port, with its log read and cleared over HTTP."""

    def __init__(self, latency_ms: float):
        self.latency_ms = latency_ms
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def __aenter__(self) -> "FakeEspProcess":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edm.fake_esp", "--port", "0", "--latency-ms", str(self.latency_ms),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 20)).decode()
        self.url = line.rsplit(" ", 1)[-1].strip()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await self.proc.wait()

    async def log(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(self.url + "/_fake/log") as resp:
            return orjson.loads(await resp.read())  # type: ignore[no-any-return]

    async def clear(self) -> None:
        async with aiohttp.ClientSession() as s, s.delete(self.url + "/_fake/log"):
            pass


class Figures:
    """One side's result, from the fake ESP's log (and its own count of local failures)."""

    def __init__(self, name: str, log: list[dict[str, Any]], local: Counter[str], since: float = 0.0,
                 cpu: float = 0.0):
        self.name = name
        log = [e for e in log if e["t"] >= since]
        outcomes = Counter(e["outcome"] for e in log)
        self.delivered = outcomes.pop("sent", 0)
        self.provider = outcomes
        self.local = local
        first = min((e["t"] for e in log), default=0.0)
        last = max((e["answered"] or e["t"] for e in log), default=0.0)
        self.seconds = max(last - first, 1e-9)
        self.rate = self.delivered / self.seconds
        # This process's CPU per request the fake ESP saw (the fake ESP's own is not in it).
        self.cpu_per_request = cpu / max(len(log), 1)

    def line(self) -> str:
        provider = sum(self.provider.values())
        local = sum(self.local.values())
        return (f"{self.name:7}: {self.rate:8,.0f} delivered/s ({self.delivered:,} in {self.seconds:.1f} s); "
                f"failures: provider-caused {provider:,} {dict(self.provider) or ''}, "
                f"local {local:,} {dict(self.local) or ''}; {1e6 * self.cpu_per_request:,.0f} us CPU per request")


async def run_bare(esp: FakeEspProcess, total: int, pool: int) -> Figures:
    """`pool` workers on one session of `pool` connections, posting EngageLab sends back to back."""
    await esp.clear()
    url = esp.url + "/v1/mail/send"
    headers = {"Authorization": basic_auth("bare", "bare-key"), "Content-Type": "application/json"}
    local: Counter[str] = Counter()
    left = iter(range(total))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in left:
            rid = str(uuid.uuid4())
            body = orjson.dumps({"from": "news@mail.example.test", "to": [f"r{i}@example.test"],
                                 "body": {"subject": f"Hi R{i}", "content": {"html": f"<p>Hi R{i}</p>", "text": "Hi"}},
                                 "request_id": rid, "custom_args": {"subtask_id": rid}})
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                local[type(exc).__name__] += 1

    connector = aiohttp.TCPConnector(limit=pool, limit_per_host=0)
    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(session) for _ in range(pool)))
    cpu = time.process_time() - cpu
    return Figures("bare", await esp.log(), local, cpu=cpu)


async def fanned_out(pool: Any, total: int) -> None:
    """Until the campaigns' subtasks are all written, then fresh statistics for the planner.

    The fan-out is measured by bench/fanout.py; here it only precedes the run. The statistics
    are those a live database would have (the table was empty when the seed analysed it):
    without them the bind statement's plan walks the whole table once per bound row."""
    while await pool.fetchval("SELECT count(*) FROM subtasks") < total:
        await asyncio.sleep(0.1)
    await pool.execute("ANALYZE subtasks")


async def run_engine(url: str, esp: FakeEspProcess, settings: Settings, box: SecretBox,
                     campaigns: list[uuid.UUID], total: int, pool_size: int, profile_to: str | None) -> Figures:
    await esp.clear()
    transport = EngageLabTransport(pool_limit=pool_size)
    providers = ProviderFactory(transport)
    pool = await db.create_pool(url, size=8)
    tune_for_dispatch()  # as edm serve does
    engine = Engine(settings, pool, SystemClock(), providers, box, LogSink(),
                    EngineOptions(claim_batch=1000, settle_batch=2000))
    await engine.start()
    await engine.wait_leader(30)
    await pool.execute("UPDATE campaigns SET scheduled_at = now() WHERE id = ANY($1)", campaigns)
    await engine.campaign_saved(campaigns[0])
    await fanned_out(pool, total)
    since = time.monotonic()  # the same clock as the fake ESP's log (CLOCK_MONOTONIC)
    cpu = time.process_time()
    profile = cProfile.Profile() if profile_to else None
    if profile is not None:
        profile.enable()
    while await pool.fetchval("SELECT count(*) FROM subtasks WHERE status IN ('sent', 'failed')") < total:
        await asyncio.sleep(0.2)
    binds = engine.dispatcher.requests
    cpu = time.process_time() - cpu
    if profile is not None and profile_to is not None:
        profile.disable()
        profile.dump_stats(profile_to)
    await engine.stop()
    await providers.close()
    local: Counter[str] = Counter()
    log = await esp.log()
    answered_by_provider = {e["request_id"] for e in log}
    for r in await pool.fetch("SELECT id::text, error FROM subtasks WHERE status = 'failed'"):
        if r["id"] not in answered_by_provider:
            local[(r["error"] or "?").split(":")[0][:40]] += 1
    if binds > len(log):
        local["bound, went back unsent"] = binds - len(log)
    if transport.queued:
        local["waited in the pool (not failed)"] = transport.queued
    await pool.close()
    return Figures("engine", log, local, since, cpu=cpu)


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, data_dir=str(ROOT / ".edm" / "bench"))
    box = SecretBox.from_settings("", settings.data_path)
    async with FakeEspProcess(args.latency_ms) as esp:
        before = await run_bare(esp, args.subtasks, args.pool)
        async with fresh_database() as url:
            pool = await db.create_pool(url, size=2)
            campaigns = await seed(pool, box, settings, args.services, args.subtasks, args.users, esp.url)
            await pool.close()
            engine = await run_engine(url, esp, settings, box, campaigns, args.subtasks, args.pool,
                                      args.profile)
        after = await run_bare(esp, args.subtasks, args.pool)
    anchor = max(before, after, key=lambda f: f.rate)
    print(f"setup  : {args.services:,} services at 1 s, {args.users} users, {args.subtasks:,} requests each side, "
          f"{args.pool} pooled connections, fake ESP latency {args.latency_ms:g} ms (separate process)")
    print(before.line().replace("bare   :", "bare 1 :", 1))
    print(engine.line())
    print(after.line().replace("bare   :", "bare 2 :", 1))
    print(f"ratio  : engine at {100 * engine.rate / anchor.rate:.0f} % of the bare client's better run (goal >= 80 %)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=12_000)
    p.add_argument("--subtasks", type=int, default=60_000)
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--pool", type=int, default=Settings().http_pool_size, help="pooled connections (both sides)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="the fake ESP's delay before each answer")
    p.add_argument("--profile", metavar="FILE", help="cProfile the engine's run into FILE (pstats)")
    started = time.perf_counter()
    uvloop.run(main(p.parse_args()))
    print(f"(whole run {time.perf_counter() - started:.0f} s)")
