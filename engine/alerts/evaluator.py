"""Evaluates the enabled alert rules against the database and opens or clears alerts.

Reads a snapshot with a few set-based queries and never touches the engine's hot state, so it
can neither slow nor block dispatch. Only the leading process evaluates (its publisher is the
one that carries engine events); de-duplication is in the database (alerts_open_key), so two
evaluators at once still open one alert per condition.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from engine.domain.alert_rules import (
    Condition,
    PausedCampaign,
    ServiceFacts,
    Snapshot,
    UserFacts,
    firing,
    reconcile,
)
from engine.infra.clock import Clock
from engine.infra.queries import Q

log = logging.getLogger("edm.alerts.evaluator")


class AlertSources(Protocol):
    """What the evaluator asks of the running process."""

    def is_leader(self) -> bool:
        ...

    def events_dropped(self) -> int | None:
        """The live-event publisher's cumulative dropped count (None = no publisher)."""
        ...

    def leader_epoch(self) -> int | None:
        """The epoch of the lease this process leads under (None = not leading)."""
        ...


@dataclass
class Evaluation:
    opened: list[uuid.UUID]
    cleared: int


class AlertEvaluator:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, sources: AlertSources):
        self.pool = pool
        self.clock = clock
        self.sources = sources
        self._epoch_seen: int | None = None
        self._dropped_seen: int | None = None

    async def evaluate(self) -> Evaluation:
        """One pass: leadership taken since the last pass, then every state rule."""
        opened: list[uuid.UUID] = []
        leader = self.sources.is_leader()
        epoch = self.sources.leader_epoch() if leader else None
        if leader and epoch != self._epoch_seen:
            # Each lease epoch is one leadership: a new term of this process counts again.
            opened += await self.leadership_taken({"epoch": epoch})
            self._epoch_seen = epoch
        if not leader:
            return Evaluation(opened, 0)
        rules = await self.pool.fetch(Q["alerting.rules"])
        state_rules = [r for r in rules if r["kind"] != "leadership_changed"]
        snap = await self._snapshot({r["kind"] for r in state_rules})
        open_rows = await self.pool.fetch(Q["alerting.open_alerts"])
        by_rule: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
        for row in open_rows:
            by_rule.setdefault(row["rule_id"], {})[row["subject"]] = row["id"]
        new: list[tuple[uuid.UUID, str, Condition]] = []
        clear: list[uuid.UUID] = []
        for r in state_rules:
            open_subjects = by_rule.pop(r["id"], {})
            to_open, to_clear = reconcile(set(open_subjects), firing(r["kind"], r["threshold"], snap))
            new += [(r["id"], r["kind"], c) for c in to_open]
            clear += [open_subjects[s] for s in to_clear]
        # Open alerts of rules disabled or gone since: their condition is no longer watched.
        clear += [aid for subjects in by_rule.values() for aid in subjects.values()]
        opened += await self._write(new, clear, snap.now, one_shot=False)
        return Evaluation(opened, len(clear))

    async def leadership_taken(self, detail: dict[str, Any] | None = None) -> list[uuid.UUID]:
        """A one-shot alert for each enabled leadership rule: this process now leads."""
        rules = [r for r in await self.pool.fetch(Q["alerting.rules"]) if r["kind"] == "leadership_changed"]
        now = self.clock.now()
        data = {"host": socket.gethostname(), "pid": os.getpid(), **(detail or {})}
        cond = Condition(f"engine:epoch:{data.get('epoch')}:{data['host']}:{data['pid']}",
                         f"engine on {data['host']} (pid {data['pid']}) took the lead (lease epoch "
                         f"{data.get('epoch')})", data)
        return await self._write([(r["id"], r["kind"], cond) for r in rules], [], now, one_shot=True)

    async def _snapshot(self, kinds: set[str]) -> Snapshot:
        now = self.clock.now()
        services: list[ServiceFacts] = []
        paused: list[PausedCampaign] = []
        users: list[UserFacts] = []
        if kinds & {"service_frozen", "service_quota_used", "service_quota_exhausted"}:
            services = [ServiceFacts(r["id"], r["name"], r["enabled"], r["abnormal_frozen"], r["abnormal_reason"],
                                     r["daily_quota"], r["used_today"], r["remaining_today"])
                        for r in await self.pool.fetch(Q["alerting.services"])]
        if "campaign_paused" in kinds:
            paused = [PausedCampaign(r["id"], r["name"], r["user_id"], r["pause_reason"], r["paused_since"])
                      for r in await self.pool.fetch(Q["alerting.paused_campaigns"])]
        if "user_quota_low" in kinds:
            users = [UserFacts(r["id"], r["username"], r["quota_remaining"])
                     for r in await self.pool.fetch(Q["alerting.spending_users"])]
        return Snapshot(now, services, paused, users, self._dropped_since_last())

    def _dropped_since_last(self) -> int | None:
        total = self.sources.events_dropped()
        if total is None:
            return None
        previous, self._dropped_seen = self._dropped_seen, total
        return 0 if previous is None else max(0, total - previous)

    async def _write(self, new: list[tuple[uuid.UUID, str, Condition]], clear: list[uuid.UUID], now: datetime,
                     *, one_shot: bool) -> list[uuid.UUID]:
        if not new and not clear:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            ids: list[uuid.UUID] = []
            if new:
                rows = await conn.fetch(Q["alerting.open"], [n[0] for n in new], [n[1] for n in new],
                                        [n[2].subject for n in new], [n[2].message for n in new],
                                        [n[2].data for n in new], now, one_shot)
                ids = [r["id"] for r in rows]
                await conn.execute(Q["alerting.enqueue"], ids, now)
            if clear:
                await conn.execute(Q["alerting.clear"], clear, now)
        for (_, kind, c) in new:
            log.warning("alert_opened kind=%s subject=%s message=%s", kind, c.subject, c.message)
        if clear:
            log.info("alerts_cleared count=%d", len(clear))
        return ids
