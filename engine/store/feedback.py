"""Delivery feedback: events matched to subtasks, automatic suppression, the reputation guard.

Every event is one `delivery_events` row (a duplicate dedupe key is a no-op, which makes a
replayed or re-delivered callback harmless); counts and rates are derived from those rows. A
campaign's funnel (recipients per kind) is kept as counters in the same transaction as the events:
each transaction adds its firsts at its end, campaigns in one order (migration 0013).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from engine.domain.reputation import GuardPolicy, verdict
from engine.infra.queries import Q
from engine.live.events import EventWriter
from engine.store.suppression import Reason, suppress

Kind = Literal["delivered", "soft_bounce", "hard_bounce", "complaint", "unsubscribe", "open", "click"]
Source = Literal["engagelab", "bounce_api", "unsubscribe_link", "tracking"]
OUTCOMES = {"delivered", "soft_bounce", "hard_bounce", "complaint"}
SUPPRESSING: dict[str, Reason] = {"hard_bounce": "hard_bounce", "complaint": "complaint",
                                  "unsubscribe": "unsubscribe"}


class Feedback(msgspec.Struct, frozen=True, kw_only=True):
    """One event about one recipient, before it is matched."""

    kind: Kind
    dedupe_key: str
    occurred_at: datetime
    subtask_id: uuid.UUID | None = None
    message_id: str | None = None
    data: dict[str, Any] = {}


@dataclass
class Recorded:
    stored: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: list[str] = field(default_factory=list)
    refunded_users: set[uuid.UUID] = field(default_factory=set)
    # Services the reputation guard froze: (id, name, reason).
    frozen: list[tuple[uuid.UUID, str, str]] = field(default_factory=list)
    # Recipients who got their first event of a kind: (campaign, kind) -> how many (the funnel's).
    firsts: Counter[tuple[uuid.UUID, str]] = field(default_factory=Counter)


class Funnel(msgspec.Struct):
    """A campaign's delivery funnel: sent → delivered → opened → clicked, and the losses; unique
    per recipient, from the campaign's counters and funnel counters. Rates are shares of `sent`."""

    total: int
    sent: int
    failed: int
    suppressed_at_start: int
    attempts: int
    delivered: int
    opened: int
    clicked: int
    hard_bounced: int
    soft_bounced: int
    complained: int
    unsubscribed: int
    rates: dict[str, float]


async def _count_firsts(conn: asyncpg.Connection, out: Recorded) -> None:
    """Add the transaction's firsts to the funnel counters, keys sorted (see `feedback.funnel_add`)."""
    if not out.firsts:
        return
    keys = sorted(out.firsts, key=lambda k: (k[0].bytes, k[1]))
    await conn.execute(Q["feedback.funnel_add"], [k[0] for k in keys], [k[1] for k in keys],
                       [out.firsts[k] for k in keys])


_FUNNEL_KEYS = ("delivered", "hard_bounced", "soft_bounced", "complained", "unsubscribed", "opened", "clicked")


async def campaign_funnel(pool: asyncpg.Pool, campaign_id: uuid.UUID) -> Funnel:
    c = await pool.fetchrow(Q["feedback.campaign_funnel"], campaign_id)
    f = {k: c[k] for k in _FUNNEL_KEYS}
    sent = c["sent"]
    rates = {k: round(v / sent, 6) if sent else 0.0 for k, v in f.items()}
    return Funnel(total=c["total"], sent=sent, failed=c["failed"], suppressed_at_start=c["suppressed_count"],
                  attempts=c["attempts"], rates=rates, **f)


@dataclass(frozen=True)
class FeedbackPolicy:
    soft_bounce_limit: int = 3
    guard: GuardPolicy = GuardPolicy()


class FeedbackStore:
    def __init__(self, pool: asyncpg.Pool, events: EventWriter, policy: FeedbackPolicy):
        self.pool = pool
        self.events = events
        self.policy = policy

    async def record(self, items: list[Feedback], source: Source, now: datetime, *,
                     service_id: uuid.UUID | None = None) -> Recorded:
        """Store and apply events in one transaction; only subtasks sent through `service_id` match."""
        out = Recorded()
        guard_services: set[uuid.UUID] = set()
        async with self.pool.acquire() as conn, conn.transaction():
            for f in items:
                sub = None
                if f.subtask_id is not None:
                    sub = await conn.fetchrow(Q["feedback.match"], f.subtask_id, service_id)
                if sub is None:
                    out.unmatched += 1
                    continue
                if await self._apply(conn, sub, f, source, now, out):
                    if f.kind in ("hard_bounce", "complaint") and sub["service_id"] is not None:
                        guard_services.add(sub["service_id"])
            for sid in guard_services:
                await self._guard(conn, sid, now, out)
            await _count_firsts(conn, out)
        return out

    async def record_for_campaign(self, campaign_id: uuid.UUID, email: str, f: Feedback, source: Source,
                                  now: datetime) -> Recorded:
        """An event reported by address for one campaign (the generic bounce endpoint)."""
        out = Recorded()
        async with self.pool.acquire() as conn, conn.transaction():
            sub = await conn.fetchrow(Q["feedback.match_email"], campaign_id, email)
            if sub is None:
                out.unmatched += 1
                return out
            if await self._apply(conn, sub, f, source, now, out) and f.kind != "soft_bounce" \
                    and sub["service_id"] is not None:
                await self._guard(conn, sub["service_id"], now, out)
            await _count_firsts(conn, out)
        return out

    async def suppress_owner(self, user_id: uuid.UUID, email: str, kind: Kind, source: Source,
                             now: datetime) -> Recorded:
        """A bounce without a campaign: only the owner's suppression list moves."""
        out = Recorded()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._suppression(conn, user_id, email, kind, source, None, now, out)
        return out

    async def _apply(self, conn: asyncpg.Connection, sub: asyncpg.Record, f: Feedback, source: Source,
                     now: datetime, out: Recorded) -> bool:
        new = await conn.fetchrow(Q["feedback.insert"], sub["id"], sub["campaign_id"], sub["user_id"],
                                  sub["service_id"], sub["email"], f.kind, source, f.dedupe_key, f.data,
                                  f.occurred_at, now)
        if new is None:
            out.duplicates += 1
            return False
        out.stored += 1
        if new["first"]:
            out.firsts[(sub["campaign_id"], f.kind)] += 1
        if f.kind in OUTCOMES:
            await conn.execute(Q["feedback.set_outcome"], sub["id"], f.kind)
        await self._suppression(conn, sub["user_id"], sub["email"], f.kind, source, sub["campaign_id"], now, out)
        return True

    async def _suppression(self, conn: asyncpg.Connection, user_id: uuid.UUID, email: str, kind: str,
                           source: Source, campaign_id: uuid.UUID | None, now: datetime, out: Recorded) -> None:
        reason: Reason | None = SUPPRESSING.get(kind)
        if kind == "soft_bounce":
            streak = await conn.fetchval(Q["suppression.soft_bounce"], user_id, email)
            if streak >= self.policy.soft_bounce_limit:
                reason = "soft_bounce"
        elif kind == "delivered":
            await conn.execute(Q["suppression.delivered"], user_id, email)
        if reason is None:
            return
        added, refunded = await suppress(conn, self.events, user_id, email, reason, now, source=source,
                                         campaign_id=campaign_id)
        out.refunded_users |= refunded
        if added:
            out.suppressed.append(email.lower())

    async def _guard(self, conn: asyncpg.Connection, service_id: uuid.UUID, now: datetime, out: Recorded) -> None:
        g = self.policy.guard
        w = await conn.fetchrow(Q["feedback.service_window"], service_id, g.window)
        reason = verdict(g, w["sends"], w["hard_bounced"], w["complained"])
        if reason is None:
            return
        data = {"sends": w["sends"], "hard_bounced": w["hard_bounced"], "complained": w["complained"],
                "guard": True}
        row = await conn.fetchrow(Q["feedback.guard_freeze"], service_id, reason, data, now)
        if row is not None:
            out.frozen.append((row["id"], row["name"], reason))

    async def service_rates(self, service_id: uuid.UUID) -> dict[str, Any]:
        g = self.policy.guard
        w = await self.pool.fetchrow(Q["feedback.service_window"], service_id, g.window)
        sends = w["sends"]
        return {"window": g.window, "sends": sends, "hard_bounced": w["hard_bounced"],
                "complained": w["complained"],
                "hard_bounce_rate": w["hard_bounced"] / sends if sends else 0.0,
                "complaint_rate": w["complained"] / sends if sends else 0.0,
                "thresholds": {"hard_bounce_rate": g.hard_bounce_rate, "complaint_rate": g.complaint_rate,
                               "min_sends": g.min_sends}}

    async def daily(self, scope: str, target: uuid.UUID, owner: uuid.UUID | None, since: datetime,
                    tz: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(Q["feedback.daily"], scope, target, owner, since, tz)
        return [{**dict(r), "day": r["day"].isoformat()} for r in rows]
