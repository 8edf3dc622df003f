"""The control API under load while a 10k-contact campaign sends (issue 11, row 4).

Starts the product as `edm demo --no-tui` does (engine + API in one process, the fake ESP, the
demo data with alice's 10,000-contact campaign sending at once) on fresh data, waits until that
campaign is sending, runs Locust headless (loadtests/locustfile.py: the dashboard's and scripts'
calls) and prints p50/p95/p99 per endpoint, plus how many subtasks the engine sent meanwhile, the
server's event-loop lag over the run (`edm_loop_lag_seconds` from /metrics) and the CPU seconds
the server, Locust and the whole machine spent.

    .venv/bin/python bench/api_load.py [--users 100] [--seconds 60] [--client fast|requests] [--py-spy profile.txt]

Data: a fresh embedded PostgreSQL + Redis under .edm/apiload-* (removed afterwards), or a fresh
database on EDM_BENCH_DATABASE_URL's server and EDM_BENCH_REDIS_URL when given. Locust and the
server share the machine: the figures are this machine's, under its other load.
`--py-spy FILE` records the server process for the middle of the run (py-spy's raw collapsed
stacks; `--py-spy-top N` prints the N functions holding most samples).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil  # Locust's own dependency
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests.report import table  # noqa: E402

BIN = Path(sys.executable).parent


def _call(base: str, path: str, token: str = "", body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["data"]  # type: ignore[no-any-return]


def _sent(base: str, token: str) -> int:
    # The overview, not its pages: the same call answers on code from before the paging.
    campaigns = _call(base, "/monitor/overview", token)["campaigns"]
    return sum(c["sent"] + c["failed"] for c in campaigns if c["owner"] == "alice")


async def _fresh_database(server: str) -> str:
    import asyncpg

    from engine.infra import db

    name = f"edm_apiload_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    return db.with_database(server, name)


async def _drop_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.close()


def _histograms(metrics_url: str) -> dict[tuple[str, str], dict[float, float]]:
    """Cumulative bucket counts of the loop-lag histogram ("lag", "") and of the API's
    request histogram by route ("GET", route; all statuses summed), by upper bound."""
    with urllib.request.urlopen(metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], dict[float, float]] = collections.defaultdict(dict)
    for family in text_string_to_metric_families(text):
        if family.name not in ("edm_loop_lag_seconds", "edm_api_request_seconds"):
            continue
        for s in family.samples:
            if not s.name.endswith("_bucket"):
                continue
            key = ("lag", "") if family.name == "edm_loop_lag_seconds" else (s.labels["method"], s.labels["route"])
            le = float(s.labels["le"])
            out[key][le] = out[key].get(le, 0.0) + s.value
    return out


def _diff(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    return {le: after[le] - before.get(le, 0.0) for le in sorted(after)}


def _quantile(counts: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile q (inf when past the last bound)."""
    total = counts.get(float("inf"), 0.0)
    return next(le for le, c in counts.items() if c >= q * total)


def _ms(le: float) -> str:
    return f"<={1000 * le:g}" if le != float("inf") else ">5000"


def _lag_report(counts: dict[float, float]) -> str:
    """The run's share of 10 ms timers that fired late by more than each bound, and p50/p99 by bucket."""
    total = counts.get(float("inf"), 0.0)
    if not total:
        return "event-loop lag: no samples (is edm_loop_lag_seconds exposed?)"
    late = ", ".join(f">{1000 * le:g} ms {100 * (1 - counts[le] / total):.1f} %"
                     for le in (0.01, 0.025, 0.05, 0.1, 0.25) if le in counts)
    return (f"event-loop lag of a 10 ms timer ({total:.0f} samples): p50 {_ms(_quantile(counts, 0.5))} ms, "
            f"p99 {_ms(_quantile(counts, 0.99))} ms; late by {late}")


def _server_report(before: dict[tuple[str, str], dict[float, float]],
                   after: dict[tuple[str, str], dict[float, float]]) -> str:
    """Latency as the server measured it (edm_api_request_seconds, by bucket bound): what is left
    of Locust's figure is the client's and the kernel's wait."""
    lines = ["server-side latency (ms, bucket bounds) by route:"]
    for (method, route), buckets in sorted(after.items()):
        if method == "lag":
            continue
        counts = _diff(before.get((method, route), {}), buckets)
        if counts.get(float("inf"), 0.0) < 10:
            continue
        lines.append(f"  {method:6} {route[:40]:40} {counts[float('inf')]:7.0f}  p50 {_ms(_quantile(counts, 0.5)):>6}  "
                     f"p99 {_ms(_quantile(counts, 0.99)):>6}")
    return "\n".join(lines)


class _Cpu:
    """CPU seconds of the server, of Locust and of the whole machine between start() and stop()."""

    def __init__(self, server: int, locust: int):
        self.procs = {"server": psutil.Process(server), "locust": psutil.Process(locust)}
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            try:
                t = proc.cpu_times()
                out[name] = t.user + t.system
            except psutil.Error:
                out[name] = self.used.get(name, 0.0)
        m = psutil.cpu_times()
        out["machine"] = m.user + m.system + m.nice + m.irq + m.softirq
        out["wall"] = time.monotonic()
        return out

    def start(self) -> None:
        self.first = self._sample()

    def sample(self) -> None:
        self.used = {k: v - self.first[k] for k, v in self._sample().items()}

    def report(self, requests: int) -> str:
        wall = self.used["wall"]
        per = f"; {1000 * self.used['server'] / requests:.1f} ms of server CPU per request" if requests else ""
        return (f"CPU over {wall:.0f} s (cores busy on average): server {self.used['server'] / wall:.2f}, "
                f"Locust {self.used['locust'] / wall:.2f}, whole machine {self.used['machine'] / wall:.2f} "
                f"of {psutil.cpu_count()}{per}; load average {os.getloadavg()[0]:.1f}")


def _requests(prefix: str) -> int:
    import csv

    rows = list(csv.DictReader(Path(prefix + "_stats.csv").open()))
    return next((int(r["Request Count"]) for r in rows if r["Name"] == "Aggregated"), 0)


def _top(profile: Path, n: int) -> str:
    """Functions by share of samples in py-spy's raw output (self time and inclusive)."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        own[frames[-1]] += k
        for f in set(frames):
            incl[f] += k
    lines = [f"{total} samples; self time:"]
    lines += [f"  {100 * k / total:5.1f}%  {f[:110]}" for f, k in own.most_common(n)]
    lines.append("inclusive (our code):")
    ours = [(f, k) for f, k in incl.most_common() if any(p in f for p in ("engine/", "api/", "edm/"))]
    lines += [f"  {100 * k / total:5.1f}%  {f[:110]}" for f, k in ours[:n]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--spawn-rate", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--esp-port", type=int, default=18081)
    ap.add_argument("--client", choices=("fast", "requests"), default="fast",
                    help="Locust's FastHttpUser (geventhttpclient) or HttpUser (requests)")
    ap.add_argument("--py-spy", type=Path, default=None, help="record the server with py-spy into this file")
    ap.add_argument("--py-spy-top", type=int, default=25)
    args = ap.parse_args()

    data_dir = ROOT / ".edm" / f"apiload-{secrets.token_hex(3)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDM_")}
    env.update(EDM_DATA_DIR=str(data_dir), EDM_PORT=str(args.port), EDM_FAKE_ESP_PORT=str(args.esp_port),
               EDM_LOG_LEVEL="WARNING",
               # A hundred simulated users log in to the same few accounts within seconds from one
               # address: the throttle is for guessing, not for this harness.
               EDM_LOGIN_MAX_FAILURES="100000")
    database = ""
    if os.environ.get("EDM_BENCH_DATABASE_URL"):
        database = asyncio.run(_fresh_database(os.environ["EDM_BENCH_DATABASE_URL"]))
        env["EDM_DATABASE_URL"] = database
    if os.environ.get("EDM_BENCH_REDIS_URL"):
        env["EDM_REDIS_URL"] = os.environ["EDM_BENCH_REDIS_URL"]
    base = f"http://127.0.0.1:{args.port}/api/v1"
    log_path = ROOT / ".edm" / "apiload-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([str(BIN / "edm"), "demo", "--no-tui"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=log_path.open("w"), text=True)
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 600
        for line in server.stdout:  # the demo prints its logins once the data is seeded
            if line.startswith("logins:"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the demo did not come up (see .edm/apiload-server.log)")
        else:
            raise SystemExit(f"the demo exited (see {log_path})")
        token = _call(base, "/auth/login", body={"username": "admin", "password": "admin-demo-pass"})["token"]
        while _sent(base, token) == 0:  # alice's campaign has fanned out and is sending
            time.sleep(1)
        sent_before, t0 = _sent(base, token), time.monotonic()
        metrics_url = f"http://127.0.0.1:{args.port}/metrics"
        hist_before = _histograms(metrics_url)
        prefix = str(ROOT / ".edm" / "apiload")
        locust = subprocess.Popen(
            [str(BIN / "locust"), "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
             "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
             "--host", f"http://127.0.0.1:{args.port}", "--csv", prefix, "--only-summary"],
            cwd=ROOT, env={**os.environ, "EDM_LOCUST_CLIENT": args.client}, stdout=subprocess.DEVNULL,
            stderr=(ROOT / ".edm" / "apiload-locust.log").open("w"))
        cpu = _Cpu(server.pid, locust.pid)
        cpu.start()
        spy = None
        if args.py_spy is not None:
            time.sleep(min(15, args.seconds / 4))  # past the logins' ramp
            spy = subprocess.Popen([str(BIN / "py-spy"), "record", "-p", str(server.pid), "-d",
                                    str(max(5, args.seconds // 2)), "-r", "100", "--format", "raw", "-o",
                                    str(args.py_spy)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while locust.poll() is None:
            cpu.sample()
            time.sleep(0.5)
        if spy is not None:
            spy.wait()
        took = time.monotonic() - t0
        hist_after = _histograms(metrics_url)
        sent_after = _sent(base, token)
        print(f"control API under load: {args.users} Locust users ({args.client} client) for {args.seconds} s "
              f"(spawn {args.spawn_rate}/s) while alice's 10,000-contact demo campaign sends")
        print(table(prefix))
        print(_server_report(hist_before, hist_after))
        print(_lag_report(_diff(hist_before.get(("lag", ""), {}), hist_after.get(("lag", ""), {}))))
        print(cpu.report(_requests(prefix)))
        print(f"engine meanwhile: {sent_after - sent_before} subtasks settled in {took:.0f} s "
              f"({(sent_after - sent_before) / took:.1f}/s; the demo's services allow about 2-3/s)")
        if args.py_spy is not None and args.py_spy.exists():
            print(f"py-spy profile of the server: {args.py_spy}")
            print(_top(args.py_spy, args.py_spy_top))
        return 0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        if database:
            asyncio.run(_drop_database(database))
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
