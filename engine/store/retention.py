"""Retention: finished campaigns' subtasks move from the hot `subtasks` table to `subtasks_archive`.

The campaign row, its counters, events, delivery events and quota ledger stay where they are, and
the API's history reads go through the `subtasks_all` view, so every answer about an archived
campaign is what it was before. Each batch is one short statement (DELETE … RETURNING feeding an
INSERT) on rows no engine statement touches any more, so it runs while the engine sends; a run
cut anywhere leaves every row in exactly one table and the next run finishes the job.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import asyncpg
import msgspec

from engine.infra.queries import Q

log = logging.getLogger("edm.retention")

BATCH = 5000


class ArchivedCampaign(msgspec.Struct, frozen=True):
    id: uuid.UUID
    status: str
    finished_at: datetime | None
    subtasks: int  # moved by this run (a dry run: the campaign's total)


class RetentionReport(msgspec.Struct, frozen=True):
    cutoff: datetime
    dry_run: bool
    campaigns: list[ArchivedCampaign]

    @property
    def subtasks(self) -> int:
        return sum(c.subtasks for c in self.campaigns)


async def archive_finished(pool: asyncpg.Pool, cutoff: datetime, now: datetime, *, dry_run: bool = False,
                           batch: int = BATCH) -> RetentionReport:
    """Archive every campaign completed or cancelled before `cutoff` (and finish any a previous
    run left half-moved). Idempotent: a second run finds nothing to do."""
    rows = await pool.fetch(Q["retention.candidates"], cutoff)
    if dry_run:
        return RetentionReport(cutoff, True, [ArchivedCampaign(r["id"], r["status"], r["finished_at"], r["total"])
                                              for r in rows])
    done: list[ArchivedCampaign] = []
    for r in rows:
        if r["archived_at"] is None:
            took = await pool.fetchval(Q["retention.take"], r["id"], now, cutoff)
            if took is None:  # retried meanwhile, or a send of it still settling: left for later
                log.info("retention_skipped campaign=%s", r["id"])
                continue
        moved = await _move(pool, r["id"], batch)
        done.append(ArchivedCampaign(r["id"], r["status"], r["finished_at"], moved))
        log.info("retention_archived campaign=%s subtasks=%d", r["id"], moved)
    return RetentionReport(cutoff, False, done)


async def _move(pool: asyncpg.Pool, campaign_id: uuid.UUID, batch: int) -> int:
    moved, last = 0, 0
    while True:
        # One statement per batch, autocommitted: locks are held for one batch only.
        row = await pool.fetchrow(Q["retention.move_batch"], campaign_id, last, batch)
        if not row["n"]:
            return moved
        moved += row["n"]
        last = row["last"]
