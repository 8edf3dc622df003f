"""Campaign start: resolve recipients, create every subtask in one statement, settle the
reservation, and move the campaign to running (or paused NO_USER_QUOTA, or failed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from engine.domain.campaign_limits import may_activate
from engine.domain.errors import QuotaInsufficient, TemplateError
from engine.domain.pause_rules import MESSAGES
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter
from engine.store import quota_ledger
from engine.templating.rendering import compile_template


@dataclass(frozen=True)
class StartOutcome:
    campaign_id: uuid.UUID
    user_id: uuid.UUID
    status: Literal["running", "paused", "failed", "skipped"]
    total: int = 0
    reason: str | None = None


async def start_campaign(pool: asyncpg.Pool, events: EventWriter, campaign_id: uuid.UUID,
                         now: datetime, max_active: int = 0) -> StartOutcome:
    """Start one due campaign in one transaction; `skipped` if it is no longer pending, or its
    owner already has `max_active` active campaigns (it stays pending; 0 = no cap)."""
    async with pool.acquire() as conn, conn.transaction():
        c = await conn.fetchrow(Q["fanout.lock_pending"], campaign_id)
        if c is None:
            return StartOutcome(campaign_id, uuid.UUID(int=0), "skipped")
        user_id = c["user_id"]
        if max_active > 0 and not may_activate(
                await conn.fetchval(Q["fanout.active_campaigns"], user_id, campaign_id), max_active):
            return StartOutcome(campaign_id, user_id, "skipped", reason="CONCURRENT_CAMPAIGN_LIMIT")
        failure = await _cannot_start(conn, c)
        suppressed = 0
        if failure is None:
            templates = [r["id"] for r in await conn.fetch(Q["engine.campaign_templates"], campaign_id)]
            total = await conn.fetchval(Q["fanout.create_subtasks"], campaign_id, user_id, templates)
            # feedback: suppressed recipients were left out (and are not charged); say how many.
            suppressed = await conn.fetchval(Q["fanout.count_suppressed"], campaign_id, user_id)
            if suppressed:
                await conn.execute(Q["fanout.set_suppressed"], campaign_id, suppressed)
            if total == 0:
                failure = "no recipients: no contact matches the campaign's tags"
        if failure is not None:
            await conn.execute(Q["fanout.mark_failed"], campaign_id, failure, now)
            if c["reserved"]:
                await quota_ledger.apply(conn, user_id, c["reserved"], "refund", campaign_id=campaign_id,
                                         reason="campaign could not start")
            await events.write(conn, [CampaignEvent(campaign_id, "failed", failure, {"refunded": c["reserved"]})],
                               now)
            return StartOutcome(campaign_id, user_id, "failed", reason=failure)
        reserved = c["reserved"]
        diff = total - reserved
        status: Literal["running", "paused"] = "running"
        reason: str | None = None
        notes = {"total": total, "reserved": reserved}
        if suppressed:
            notes["suppressed"] = suppressed
        if diff < 0:
            await quota_ledger.apply(conn, user_id, -diff, "refund", campaign_id=campaign_id,
                                     reason="fewer recipients than planned")
            reserved = total
            notes["refunded"] = -diff
        elif diff > 0:
            try:
                async with conn.transaction():  # a savepoint: a refused charge leaves no trace
                    await quota_ledger.apply(conn, user_id, -diff, "charge", campaign_id=campaign_id,
                                             reason="more recipients than planned")
                reserved = total
                notes["charged"] = diff
            except QuotaInsufficient:
                status, reason = "paused", "NO_USER_QUOTA"
                notes["shortfall"] = diff
        await conn.execute(Q["fanout.mark_started"], campaign_id, status, reason, total, reserved, now)
        evs = [CampaignEvent(campaign_id, "started", f"{total} subtasks created", notes)]
        if reason is not None:
            evs.append(CampaignEvent(campaign_id, "paused", MESSAGES[reason], {"reason": reason}))
        await events.write(conn, evs, now)
        return StartOutcome(campaign_id, user_id, status, total, reason)


async def _cannot_start(conn: asyncpg.Connection, c: asyncpg.Record) -> str | None:
    """Why the campaign cannot start (sender gone, a template that cannot render), or None."""
    if c["sender_id"] is None or not await conn.fetchval(Q["fanout.sender_exists"], c["sender_id"], c["user_id"]):
        return f"the sender {c['sender_name']!r} no longer exists"
    rows = await conn.fetch(Q["engine.campaign_templates"], c["id"])
    if not rows:
        return "the campaign has no template"
    for r in rows:
        try:
            compile_template(r["subject"], r["html_body"], r["text_body"])
        except TemplateError as exc:
            return f"template {r['id']} cannot render: {exc.message}"
    return None
