"""`edm fake-esp`: run the fake EngageLab on a port until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Sequence

import msgspec
import uvloop

from edm.fake_esp.config import FakeEspConfig
from edm.fake_esp.server import bound_port, serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `fake-esp` options, for the `edm` CLI's sub-parser."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="port to listen on (0 = any free port)")
    parser.add_argument("--config", type=Path, help="JSON file with a full config (default, users, seed, keys)")
    parser.add_argument("--latency-ms", type=float, help="delay before every answer, in ms")
    parser.add_argument("--error-rate", type=float, help="share of requests answered 500 (0..1)")
    parser.add_argument("--throttle-rate", type=float, help="share of requests answered 429 (0..1)")
    parser.add_argument("--retry-after", type=float, help="Retry-After seconds on 429 answers (default 1)")
    parser.add_argument("--fail-user", action="append", default=[], metavar="API_USER",
                        help="answer every request of this api_user with 403 (repeatable)")
    parser.add_argument("--seed", type=int, help="seed of the random outcomes (default 0)")
    parser.add_argument("--log-file", help="also append every request to this JSON-lines file")
    parser.add_argument("--log-max", type=int, help="requests kept in memory (default 1000000)")


def config_from_args(args: argparse.Namespace) -> FakeEspConfig:
    """The start-up config: the --config file, then the individual options over it."""
    base: dict = {}
    if args.config is not None:
        base = msgspec.json.decode(args.config.read_bytes())
    default = dict(base.get("default") or {})
    for option, knob in (("latency_ms", "latency_ms"), ("error_rate", "error_rate"),
                         ("throttle_rate", "throttle_rate"), ("retry_after", "retry_after")):
        if getattr(args, option) is not None:
            default[knob] = getattr(args, option)
    base["default"] = default
    users = dict(base.get("users") or {})
    for api_user in args.fail_user:
        users[api_user] = {**default, **users.get(api_user, {}), "fail_all": True}
    base["users"] = users
    for option in ("seed", "log_file", "log_max"):
        if getattr(args, option) is not None:
            base[option] = getattr(args, option)
    return msgspec.convert(base, FakeEspConfig)


async def _serve_until_stopped(host: str, port: int, config: FakeEspConfig) -> None:
    runner = await serve(host, port, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake ESP listening on http://{host}:{bound_port(runner)}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    """Run the fake ESP from parsed arguments; returns the exit code."""
    try:
        config = config_from_args(args)
    except (msgspec.ValidationError, msgspec.DecodeError, OSError) as exc:
        print(f"edm fake-esp: bad configuration: {exc}", file=sys.stderr)
        return 2
    uvloop.run(_serve_until_stopped(args.host, args.port, config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edm fake-esp", description="A fake EngageLab email API for tests and demos.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


__all__ = ["add_arguments", "config_from_args", "main", "run"]
