"""Lateness: request start minus the moment the request's service became free, with thousands of
services at a 1 s interval sending through HTTP to `edm fake-esp` in a separate process.

    .venv/bin/python bench/lateness.py [--services 2000] [--seconds 30] [--users 4] [--latency-ms 0]

The engine-side figure is what `edm_dispatch_lateness_seconds` observes (request start, i.e. the
moment the request is handed to the adapter, minus the service's free time); it is split into
where the time went: the timer (free time to the tick that picked it: loop wake-up, a tick or
settle still holding the write lock), the bind (the tick's `sending` write round trip) and the
start (bind written to request start: task scheduling, rendering, the requests ahead of it in
the same tick). The fake ESP's log gives the provider's view: per service, the gap between two
arrivals minus the 1 s interval. An event-loop probe (a 5 ms sleep in a loop) shows the stalls.
The first `--warmup` seconds (claims, the first phase-locked round) are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from typing import Any

import uvloop
from dispatch import seed
from http_dispatch import FakeEspProcess, fanned_out
from support import ROOT, fresh_database

from engine.dispatch.leader import Engine, EngineOptions
from engine.dispatch.sender import Bind
from engine.infra import db
from engine.infra.clock import SystemClock
from engine.infra.config import Settings
from engine.infra.gc_policy import tune_for_dispatch
from engine.infra.secret_box import SecretBox
from engine.live.events import LogSink
from engine.live.metrics import EngineMetrics
from engine.providers import EngageLabTransport, ProviderFactory


class RecordingMetrics(EngineMetrics):
    """The product's metrics, also keeping each lateness observation (after `since`)."""

    def __init__(self) -> None:
        super().__init__()
        self.since = float("inf")
        self.samples: list[float] = []

    def lateness(self, seconds: float) -> None:
        super().lateness(seconds)
        if time.monotonic() >= self.since:
            self.samples.append(seconds)


class Phases:
    """Wraps one dispatcher's tick and start to time each request's way from free to started."""

    def __init__(self, engine: Engine, metrics: RecordingMetrics):
        self.metrics = metrics
        self.marks: dict[int, list[float]] = {}
        self.split: list[tuple[float, float, float]] = []
        self.tick_sizes: list[int] = []
        self.starts: dict[str, float] = {}
        # When the metric takes each request as started (its slice on the wire, or its answer given).
        self.on_wire: dict[str, float] = {}
        d = engine.dispatcher
        collect, bind, started, on_wire = d._collect, d._bind, d.sender._started, d.sender._on_the_wire

        def timed_collect(now: Any, mono: float) -> list[Bind]:
            binds = collect(now, mono)
            for b in binds:
                self.marks[id(b)] = [mono]
            if binds and time.monotonic() >= metrics.since:
                self.tick_sizes.append(len(binds))
            return binds

        async def timed_bind(binds: list[Bind]) -> None:
            await bind(binds)  # the requests' tasks are spawned, not yet run
            done = time.monotonic()
            for b in binds:
                self.marks[id(b)].append(done)

        def timed_started(b: Bind) -> None:
            at = time.monotonic()
            mark = self.marks.pop(id(b), None)
            started(b)
            self.starts[str(b.item.id)] = at
            if mark is not None and len(mark) == 2 and at >= metrics.since:
                self.split.append((mark[0] - b.due, mark[1] - mark[0], at - mark[1]))

        def timed_on_wire(binds: Any, mono: float) -> None:
            binds = list(binds)
            on_wire(binds, mono)
            at = time.monotonic()
            for b in binds:
                self.on_wire[str(b.item.id)] = at

        # Instance attributes shadow the methods the dispatcher's loop looks up on each call.
        d._collect = timed_collect  # type: ignore[method-assign]
        d._bind = timed_bind  # type: ignore[method-assign]
        d.sender._started = timed_started  # type: ignore[method-assign]
        d.sender._on_the_wire = timed_on_wire  # type: ignore[method-assign]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name:34}: p50 {pct(ms, 50):7.1f} ms  p95 {pct(ms, 95):7.1f} ms  p99 {pct(ms, 99):7.1f} ms"
            f"  max {max(ms, default=float('nan')):7.1f} ms  (n={len(ms):,})")


async def loop_probe(stalls: list[float], since: list[float]) -> None:
    while True:
        t = time.monotonic()
        await asyncio.sleep(0.005)
        if t >= since[0]:
            stalls.append(time.monotonic() - t - 0.005)


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, data_dir=str(ROOT / ".edm" / "bench"))
    box = SecretBox.from_settings("", settings.data_path)
    # Enough work that no service runs dry before the end: one request a second each.
    subtasks = args.services * int(args.seconds + args.warmup + 10)
    async with FakeEspProcess(args.latency_ms) as esp, fresh_database() as url:
        pool = await db.create_pool(url, size=2)
        campaigns = await seed(pool, box, settings, args.services, subtasks, args.users, esp.url)
        await pool.close()
        pool = await db.create_pool(url, size=8)
        tune_for_dispatch()
        metrics = RecordingMetrics()
        providers = ProviderFactory(EngageLabTransport(pool_limit=settings.http_pool_size))
        engine = Engine(settings, pool, SystemClock(), providers, box, LogSink(),
                        EngineOptions(claim_batch=1000, settle_batch=2000), metrics=metrics)
        await engine.start()
        await engine.wait_leader(30)
        phases = Phases(engine, metrics)
        stalls: list[float] = []
        since = [float("inf")]
        probe = asyncio.get_running_loop().create_task(loop_probe(stalls, since))
        await esp.clear()
        await pool.execute("UPDATE campaigns SET scheduled_at = now() WHERE id = ANY($1)", campaigns)
        await engine.campaign_saved(campaigns[0])
        await fanned_out(pool, subtasks)
        await asyncio.sleep(args.warmup)
        metrics.since = since[0] = time.monotonic()
        cpu = time.process_time()
        await asyncio.sleep(args.seconds)
        end = time.monotonic()
        cpu = time.process_time() - cpu
        probe.cancel()
        await engine.stop()
        await providers.close()
        # The provider's view, per service: every service shares one api_user here, so a
        # request's service is its subtask's (request_id is the subtask id).
        service_of = dict(await pool.fetch("SELECT id::text, service_id FROM subtasks WHERE service_id IS NOT NULL"))
        await pool.close()
        log = await esp.log()
    arrivals: dict[Any, list[float]] = defaultdict(list)
    for e in log:
        if e["t"] >= metrics.since - 1.0:
            arrivals[service_of.get(e["request_id"])].append(e["t"])
    gaps = [b - a - 1.0 for ts in arrivals.values() for a, b in zip(sorted(ts), sorted(ts)[1:])]
    sent = len(metrics.samples)
    print(f"setup : {args.services:,} services at 1 s, {args.users} users, fake ESP latency {args.latency_ms:g} ms "
          f"(separate process); measured {args.seconds:g} s after {args.warmup:g} s of warm-up")
    print(f"rate  : {sent / (end - metrics.since):,.0f} requests/s started (the services allow {args.services:,}/s); "
          f"ticks: {len(phases.tick_sizes):,}, binds per tick p50 {pct([float(n) for n in phases.tick_sizes], 50):.0f} "
          f"max {max(phases.tick_sizes, default=0)}")
    print(f"cpu   : {1e6 * cpu / max(sent, 1):,.0f} us of the engine process's CPU per request started")
    print(row("lateness (request start - free)", metrics.samples) + "   goal: p99 <= 20 ms")
    print(row("  timer: free -> picked by a tick", [s[0] for s in phases.split]))
    print(row("  bind: the tick's write", [s[1] for s in phases.split]))
    print(row("  start: bind written -> started", [s[2] for s in phases.split]))
    print(row("event-loop stalls (5 ms probe)", stalls))
    if gaps:
        print(row("fake ESP: arrival gap - interval", gaps))
    # The handover and the moment the metric takes as the request's start, against the moment the
    # request reached the fake ESP (one monotonic clock for both processes; the fake ESP logs a
    # request when its handler runs, so its own queue is in there too).
    handed = [e["t"] - phases.starts[e["request_id"]] for e in log
              if e["request_id"] in phases.starts and e["t"] >= metrics.since]
    transit = [e["t"] - phases.on_wire[e["request_id"]] for e in log
               if e["request_id"] in phases.on_wire and e["t"] >= metrics.since]
    print(row("handed over -> fake ESP arrival", handed))
    print(row("metric's start -> fake ESP arrival", transit))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--latency-ms", type=float, default=0.0, help="the fake ESP's delay before each answer")
    uvloop.run(main(p.parse_args()))
