"""Start-up recovery: settle what a crash left behind and reconcile the counters.

Claimed-but-unsent subtasks need nothing: claims live only in memory and the rows are still
`pending`. A `sending` row may have reached the provider, so it is failed (never resent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from engine.dispatch.domain_gate import DomainGate
from engine.domain.domain_limits import DomainGroup
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


async def load_domain_limits(pool: asyncpg.Pool, gate: DomainGate, default_rate_limit: int, now: datetime) -> None:
    """Domain groups and the per-minute cap as configured, with their counts rebuilt from subtasks
    (recipient domain, service, attempt time) of the business day and the last minute, like
    `used_today` above: at start-up, and again whenever an administrator changes them."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        groups = [DomainGroup(r["name"], frozenset(r["domains"]), r["per_minute"], r["per_day"], r["per_service"])
                  for r in await conn.fetch(Q["domain_limits.group_list"], None, 0)]
        cap = await conn.fetchval(Q["domain_limits.rate_limit_get"])
        gate.set_groups(groups)
        gate.rate_limit = default_rate_limit if cap is None else cap
        rows = []
        if gate.on or gate.rate_limit > 0:
            day_start, _ = gate.day(now)
            rows = await conn.fetch(Q["domain_limits.usage"], day_start, now - timedelta(minutes=1))
    gate.rebuild(rows, now)
    log.info("domain_limits_loaded groups=%d rate_limit=%d", len(groups), gate.rate_limit)
