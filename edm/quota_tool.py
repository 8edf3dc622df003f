"""`edm quota`: the reset-time tool operators already know, against the product's database."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edm.runtime import open_deps, resolve_urls
from engine.domain.quota_day import format_hhmm, next_reset, parse_reset_time, quota_day_start
from engine.infra.clock import Clock, SystemClock
from engine.infra.config import Settings
from engine.infra.queries import Q


def _local(ts: datetime | None, settings: Settings) -> str:
    return ts.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _state(row: Any) -> str:
    if not row["enabled"]:
        return "disabled"
    if row["abnormal_frozen"]:
        return "frozen"
    if row["remaining_today"] <= 0:
        return "exhausted"
    return "ready"


async def _list(settings: Settings, status: bool, clock: Clock | None = None) -> int:
    now = (clock or SystemClock()).now()
    async with open_deps(settings, resolve_urls(settings)) as d:
        rows = await d.pool.fetch(Q["quota_tool.services"])
    header = f"{'NAME':<20} {'STATE':<9} {'USED':>8} {'DAILY':>8} {'LEFT':>8} {'RESET':>5}  {'NEXT RESET':<16}"
    if status:
        header += f"  {'DAY STARTED':<16}  {'LAST RESET':<16}  DUE"
    print(header)
    for r in rows:
        line = (f"{r['name']:<20} {_state(r):<9} {r['used_today']:>8} {r['daily_quota']:>8} {r['remaining_today']:>8} "
                f"{format_hhmm(r['reset_time']):>5}  {_local(next_reset(r['reset_time'], settings.tz, now), settings):<16}")
        if status:
            due = quota_day_start(r["reset_time"], settings.tz, now) > r["quota_day_start"]
            line += (f"  {_local(r['quota_day_start'], settings):<16}  {_local(r['last_reset_at'], settings):<16}  "
                     f"{'yes (engine not running?)' if due else 'no'}")
        print(line)
    print(f"{len(rows)} service(s); times in {settings.business_tz}")
    return 0


async def _set(settings: Settings, name: str, text: str, clock: Clock | None = None) -> int:
    try:
        reset = parse_reset_time(text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hhmm = format_hhmm(reset)
    now = (clock or SystemClock()).now()
    async with open_deps(settings, resolve_urls(settings)) as d:
        row = await d.pool.fetchrow(Q["quota_tool.by_name"], name)
        if row is None:
            print(f"error: no service named {name!r}", file=sys.stderr)
            return 1
        async with d.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["quota_tool.set_reset_time"], row["id"], reset,
                               quota_day_start(reset, settings.tz, now))
            await conn.execute(Q["quota_tool.log"], row["id"], "updated",
                               f"reset time {format_hhmm(row['reset_time'])} -> {hhmm} (edm quota set)",
                               {"reset_time": hhmm, "previous": format_hhmm(row["reset_time"])}, None)
        await _tell_engine(d.pool, "service", row["id"])
    print(f"{row['name']}: resets daily at {hhmm} {settings.business_tz}; next reset "
          f"{_local(next_reset(reset, settings.tz, now), settings)}")
    return 0


async def _reset_now(settings: Settings, name: str, clock: Clock | None = None) -> int:
    # A plain connection, no Redis, no pool: the command takes effect in the time of one round trip.
    from engine.infra import db

    conn = await db.connect(resolve_urls(settings, redis=False).database)
    try:
        if await reset_by_name(conn, name, (clock or SystemClock()).now(), settings.tz) is None:
            print(f"error: no service named {name!r}", file=sys.stderr)
            return 1
    finally:
        await conn.close()
    print(f"{name}: quota reset now")
    return 0


async def reset_by_name(conn: Any, name: str, now: datetime, tz: ZoneInfo | None = None) -> Any:
    """Reset a service's quota by hand and hand the leader the same command the API sends
    (`reset:<id>`, delivered at commit); the service's id, or None if there is none by that name."""
    from engine.dispatch.resets import reset_service_now

    async with conn.transaction():
        row = await conn.fetchrow(Q["quota_tool.by_name"], name)
        if row is None:
            return None
        await reset_service_now(conn, row["id"], now, note="edm quota reset-now", tz=tz)
        await _tell_engine(conn, "reset", row["id"])
    return row["id"]


async def _tell_engine(conn: Any, kind: str, service_id: Any) -> None:
    """The running leader applies the command to its hot state (harmless when none runs)."""
    from engine.dispatch.command_surface import CHANNEL

    await conn.execute(Q["engine.notify"], CHANNEL, f"{kind}:{service_id}")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    quota = sub.add_parser("quota", help="service daily quotas and reset times")
    qs = quota.add_subparsers(dest="quota_command", required=True)
    qs.add_parser("list", help="every service's quota use and next reset").set_defaults(fn=lambda a: _run(_list, False))
    qs.add_parser("status", help="list, plus each quota day's start, last reset and whether one is due").set_defaults(
        fn=lambda a: _run(_list, True))
    p = qs.add_parser("set", help="set a service's daily reset time (HH:MM or the seed's HH:MM:SS with :00 "
                                  "seconds, business time zone)")
    p.add_argument("name")
    p.add_argument("time", metavar="HH:MM[:SS]")
    p.set_defaults(fn=lambda a: _run(_set, a.name, a.time))
    p = qs.add_parser("reset-now", help="refill a service's daily quota now (logged)")
    p.add_argument("name")
    p.set_defaults(fn=lambda a: _run(_reset_now, a.name))


def _run(fn: Any, *args: Any) -> int:
    return int(asyncio.run(fn(Settings.from_env(), *args)))
