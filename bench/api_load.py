"""The control API under load while a 10k-contact campaign sends (issue 11, row 4).

Starts the product as `edm demo --no-tui` does (engine + API in one process, the fake ESP, the
demo data with alice's 10,000-contact campaign sending at once) on fresh data, waits until that
campaign is sending, runs Locust headless (loadtests/locustfile.py: the dashboard's and scripts'
calls) and prints p50/p95/p99 per endpoint, plus how many subtasks the engine sent meanwhile.

    .venv/bin/python bench/api_load.py [--users 100] [--seconds 60] [--py-spy profile.txt]

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
        prefix = str(ROOT / ".edm" / "apiload")
        locust = subprocess.Popen(
            [str(BIN / "locust"), "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
             "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
             "--host", f"http://127.0.0.1:{args.port}", "--csv", prefix, "--only-summary"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(ROOT / ".edm" / "apiload-locust.log").open("w"))
        if args.py_spy is not None:
            time.sleep(min(15, args.seconds / 4))  # past the logins' ramp
            subprocess.run([str(BIN / "py-spy"), "record", "-p", str(server.pid), "-d",
                            str(max(5, args.seconds // 2)), "-r", "100", "--format", "raw", "-o", str(args.py_spy)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        locust.wait()
        took = time.monotonic() - t0
        sent_after = _sent(base, token)
        print(f"control API under load: {args.users} Locust users for {args.seconds} s "
              f"(spawn {args.spawn_rate}/s) while alice's 10,000-contact demo campaign sends")
        print(table(prefix))
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
