"""Start-up recovery: settle what a crash left behind and reconcile the counters.

Claimed-but-unsent subtasks need nothing: claims live only in memory and the rows are still
`pending`. A `sending` row may have reached the provider, so it is failed (never resent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter

log = logging.getLogger("edm.engine.recovery")

UNKNOWN_OUTCOME = "OUTCOME_UNKNOWN: outcome unknown after restart"


@dataclass(frozen=True)
class RecoveryReport:
    failed_unknown: int
    campaigns_fixed: int
    services_fixed: int
    ledger_mismatches: int


async def recover(pool: asyncpg.Pool, events: EventWriter, now: datetime) -> RecoveryReport:
    async with pool.acquire() as conn, conn.transaction():
        unknown = await conn.fetch(Q["recovery.fail_unknown"], UNKNOWN_OUTCOME, now)
        await events.write(conn, [CampaignEvent(r["campaign_id"], "outcome_unknown",
                                                f"{r['n']} subtasks failed: outcome unknown after restart",
                                                {"count": r["n"]}) for r in unknown], now)
        campaigns = await conn.fetch(Q["recovery.reconcile_campaigns"], [r["campaign_id"] for r in unknown])
        services = await conn.fetch(Q["recovery.reconcile_services"], None)
    mismatched = await pool.fetch(Q["recovery.ledger_mismatches"])
    for r in mismatched:
        log.error("ledger_mismatch user=%s", r["id"])
    report = RecoveryReport(sum(r["n"] for r in unknown), len(campaigns), len(services), len(mismatched))
    log.info("recovery failed_unknown=%d campaigns_fixed=%d services_fixed=%d ledger_mismatches=%d",
             report.failed_unknown, report.campaigns_fixed, report.services_fixed, report.ledger_mismatches)
    return report
