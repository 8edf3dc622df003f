"""An engine in its own process, for the SIGKILL and SIGSTOP tests: `python -m tests.engine_proc ...`.

Prints its role (`leader`, `standby`) each time it changes, then dispatches until killed. With
`--send-log FILE`, appends `<wall time> <subtask id>` to FILE just before every provider call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from typing import Any, Mapping

import uvloop

from engine.dispatch.leader import Engine, EngineOptions
from engine.infra import db
from engine.infra.config import Settings
from engine.infra.scaled_clock import ScaledClock
from engine.infra.secret_box import SecretBox
from engine.live.events import LogSink
from engine.providers.base import Message, Provider, SendResult
from engine.providers.factory import ProviderFactory


class _Logged:
    def __init__(self, inner: Provider, path: str):
        self.inner = inner
        self.path = path
        self.slots = inner.slots

    def answer_now(self, message: Message) -> SendResult | None:
        return None  # every send is logged first

    async def send(self, message: Message) -> SendResult:
        with open(self.path, "a") as f:
            f.write(f"{time.time()} {message.subtask_id}\n")
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()


class LoggingProviders(ProviderFactory):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def build(self, kind: str, credentials: Mapping[str, Any], base_url: str | None = None) -> Provider:
        return _Logged(super().build(kind, credentials, base_url), self.path)


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env({}, data_dir=args.data_dir)
    pool = await db.create_pool(args.db, size=5)
    clock = ScaledClock(datetime.fromisoformat(args.start), args.factor, wall_anchor=args.anchor)
    box = SecretBox.from_settings("", settings.data_path)
    providers = LoggingProviders(args.send_log) if args.send_log else ProviderFactory()
    engine = Engine(settings, pool, clock, providers, box, LogSink(),
                    EngineOptions(claim_batch=50, lease_seconds=2.0, renew_seconds=0.3,
                                  counters_every=args.counters_every))
    await engine.start()
    said = "idle"
    while engine.role != "stopped":
        role = "leader" if engine.is_leader and engine.leader.is_set() else engine.role
        if role != said and role in ("leader", "standby"):
            print(role, flush=True)
        said = role
        await asyncio.sleep(0.02)
    await engine.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--anchor", type=float, required=True)
    parser.add_argument("--factor", type=float, default=50.0)
    parser.add_argument("--send-log", default="")
    parser.add_argument("--counters-every", type=float, default=2.0)
    uvloop.run(main(parser.parse_args()))
    sys.exit(1)
