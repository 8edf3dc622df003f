"""`edm archive`: move finished campaigns' subtasks out of the hot table (engine/store/retention.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from edm.runtime import resolve_urls
from engine.infra import db
from engine.infra.clock import Clock, SystemClock
from engine.infra.config import Settings
from engine.store.retention import archive_finished


async def run_archive(settings: Settings, older_than: int | None, dry_run: bool, clock: Clock | None = None) -> int:
    days = older_than if older_than is not None else settings.retention_days
    if days <= 0:
        print("error: retention is off: give --older-than DAYS or set EDM_RETENTION_DAYS", file=sys.stderr)
        return 2
    now = (clock or SystemClock()).now()
    pool = await db.create_pool(resolve_urls(settings, redis=False).database, size=2)
    try:
        report = await archive_finished(pool, now - timedelta(days=days), now, dry_run=dry_run)
    finally:
        await pool.close()
    verb = "would archive" if dry_run else "archived"
    for c in report.campaigns:
        finished = c.finished_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if c.finished_at else "-"
        print(f"{c.id}  {c.status:<9}  finished {finished}  {c.subtasks:>9} subtask(s)")
    print(f"{verb} {len(report.campaigns)} campaign(s), {report.subtasks} subtask(s) "
          f"finished before {report.cutoff.astimezone(settings.tz):%Y-%m-%d %H:%M} ({settings.business_tz})")
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    # At least a day: today's sends are what the engine recounts a service's used_today from.
    if days < 1:
        raise argparse.ArgumentTypeError("at least 1 day")
    return days


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("archive", help="move finished campaigns' subtasks out of the hot table (retention)",
                       description="Archive campaigns completed or cancelled more than DAYS ago (default "
                                   "EDM_RETENTION_DAYS): their subtasks move to subtasks_archive in short "
                                   "batches; counts, history, events and logs answer as before. Safe while "
                                   "the engine runs, safe to interrupt and run again.")
    p.add_argument("--older-than", type=_days, metavar="DAYS", default=None,
                   help="finished more than DAYS ago (default: EDM_RETENTION_DAYS)")
    p.add_argument("--dry-run", action="store_true", help="list what would be archived; change nothing")
    p.set_defaults(fn=lambda a: asyncio.run(run_archive(Settings.from_env(), a.older_than, a.dry_run)))
