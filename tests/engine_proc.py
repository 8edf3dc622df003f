"""An engine in its own process, for the SIGKILL test: `python -m tests.engine_proc ...`.

Prints `leader` once it leads, then dispatches until killed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import uvloop

from engine.dispatch.leader import Engine, EngineOptions
from engine.infra import db
from engine.infra.config import Settings
from engine.infra.scaled_clock import ScaledClock
from engine.infra.secret_box import SecretBox
from engine.live.events import LogSink
from engine.providers.factory import ProviderFactory


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, data_dir=args.data_dir)
    pool = await db.create_pool(args.db, size=5)
    clock = ScaledClock(datetime.fromisoformat(args.start), args.factor, wall_anchor=args.anchor)
    box = SecretBox.from_settings("", settings.data_path)
    engine = Engine(settings, pool, clock, ProviderFactory(), box, LogSink(), EngineOptions(claim_batch=50, lease_seconds=2.0, renew_seconds=0.3))
    await engine.start()
    await engine.wait_leader()
    print("leader", flush=True)
    await engine.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--anchor", type=float, required=True)
    parser.add_argument("--factor", type=float, default=50.0)
    uvloop.run(main(parser.parse_args()))
    sys.exit(1)
