"""Settlement: send results written in batches through a write-through buffer, then what follows
from them (freezes, throttle events, progress, refunds, requeues, completed campaigns)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Awaitable, Callable, Iterable

import asyncpg

from engine.dispatch.dispatch_queries import DispatchQueries, Freeze, ServiceLive, SettleBatch, Throttled
from engine.dispatch.hot_state import HotState
from engine.dispatch.sender import Settlement
from engine.dispatch.settle_buffer import TimedOverflowBuffer
from engine.dispatch.write_gate import WriteGate
from engine.infra.clock import Clock
from engine.infra.db import is_transient
from engine.live.events import EngineEvent, EventWriter
from engine.live.metrics import EngineMetrics
from engine.live.send_minutes import SettledSend
from engine.providers.base import SendResult

log = logging.getLogger("edm.engine.dispatcher")

# Seconds between two updates of the queue-depth gauge (real time: it only paces a metric).
DEPTH_EVERY = 1.0
# Settle statements in flight at once, each on its own pooled connection (a bind runs beside
# them: write_gate.py), and the batch a backlog is taken in (settle_buffer.py).
SETTLE_WRITERS = 2
SETTLE_BATCH_MAX = 5000


async def _nothing() -> None:
    return None


def _quarantine(x: Settlement, exc: BaseException) -> Settlement:
    """What a result the database refused is written as: a failure with a clean error (the
    request was made, its outcome cannot be stored: at most once, never resent)."""
    state = getattr(exc, "sqlstate", None)
    error = SendResult.failed("SETTLE_REJECTED", f"the result could not be stored ({type(exc).__name__}"
                                                 f"{' ' + state if state else ''}); original outcome: {x.result.outcome}")
    return Settlement(x.bind, error, x.at, give_back=x.give_back)


class Settler:
    """Owns the settle buffer and everything a flush of results sets in motion."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, state: HotState, events: EventWriter,
                 queries: DispatchQueries, write_lock: WriteGate, *, mark_dirty: Callable[[set[uuid.UUID]], None],
                 wake_user: Callable[[uuid.UUID], None], sends_open: Callable[[], int],
                 settle_batch: int = 500, settle_delay: float = 0.02, metrics: EngineMetrics | None = None):
        self.pool = pool
        self.clock = clock
        self.state = state
        self.events = events
        self.queries = queries
        # The engine's one write lock (write_gate.py): a flush holds it shared, alongside a bind.
        self.write_lock = write_lock
        self.mark_dirty = mark_dirty
        self.wake_user = wake_user
        self.sends_open = sends_open
        self.metrics = metrics
        self.buffer: TimedOverflowBuffer[Settlement] = TimedOverflowBuffer(
            self._flush, max_size=settle_batch, max_delay=settle_delay, transient=is_transient,
            quarantine=_quarantine, on_isolated=self._on_isolated, writers=SETTLE_WRITERS,
            max_batch=max(settle_batch, SETTLE_BATCH_MAX))
        # Campaigns with results in a flush not yet committed (two flushes run at once): not
        # asked to complete until those are written.
        self._unsettled: Counter[uuid.UUID] = Counter()
        # Services a failure streak asked to freeze, written with the next flush.
        self.to_freeze: set[uuid.UUID] = set()
        self._depth_at = -DEPTH_EVERY
        # The counters' write-behind (counter_writer.py), told of services a give-back moved, and
        # its write for a holder of the write lock.
        self.touch_counters: Callable[[uuid.UUID], None] = lambda service_id: None
        self.flush_counters: Callable[[], Awaitable[object]] = _nothing
        # Settled results, told to the per-minute send counters (engine/live/send_minutes.py).
        self.record_sends: Callable[[Iterable[SettledSend]], None] = lambda results: None

    def ask_freeze(self, service_id: uuid.UUID) -> None:
        self.to_freeze.add(service_id)

    async def _flush(self, batch: list[Settlement]) -> None:
        now = self.clock.now()
        cols = SettleBatch([], [], [], [], [], [], [], [], [])
        for x in batch:
            r = x.result
            cols.ids.append(x.bind.item.id)
            cols.outcomes.append(r.outcome)
            cols.message_ids.append(r.message_id)
            cols.errors.append(None if r.outcome == "sent" else f"{r.error_code}: {r.error}"[:1000])
            cols.settled_at.append(x.at)
            cols.service_ids.append(x.bind.service.id)
            cols.attempted_at.append(x.bind.at)
            cols.give_back.append(x.give_back)
            cols.campaign_ids.append(x.bind.campaign.id)
        # Only services whose failure count or throttle moved since last written: a run of
        # successes writes no services row here at all.
        services = {x.bind.service.id: x.bind.service for x in batch
                    if x.bind.service.written_live != (x.bind.service.consecutive_failures,
                                                       x.bind.service.throttled_until)}
        throttled = [x for x in batch if x.result.outcome == "throttled"]
        # An unfreeze (or a reload) since the failure that asked for it cancels a freeze.
        self.to_freeze.difference_update([sid for sid in self.to_freeze
                                           if (sv := self.state.services.get(sid)) is None or not sv.abnormal_frozen])
        freeze = [services[sid] for sid in list(self.to_freeze) if sid in services]
        # Failure streaks and freezes write services rows: in turn with the counters' write-behind.
        rows_lock = self.write_lock.services_rows if services or freeze else contextlib.nullcontext()
        campaigns = Counter(cols.campaign_ids)
        self._unsettled.update(campaigns)
        try:
            async with self.write_lock.shared(), rows_lock:
                live = [(s, (s.consecutive_failures, s.throttled_until)) for s in services.values()]
                rows, frozen_ids = await self.queries.settle(
                    cols, [ServiceLive(s.id, *v) for s, v in live],
                    [Throttled(x.bind.service.id, f"throttled by the provider: {x.result.error_code} {x.result.error}"[:500],
                               {"retry_after": x.result.retry_after,
                                "until": x.bind.service.throttled_until.isoformat()
                                if x.bind.service.throttled_until else None}, x.at) for x in throttled],
                    [Freeze(s.id, s.abnormal_reason or f"{s.consecutive_failures} consecutive failures",
                            s.consecutive_failures) for s in freeze], now)
        finally:
            self._unsettled.subtract(campaigns)
            self._unsettled += Counter()  # drops the zeros
        missed = {r["id"] for r in rows if r["status"] == "missed"}
        if missed:
            # Changed by someone else between the probe and the update: written by a later flush.
            log.warning("settle_missed results=%d: written again with the next flush", len(missed))
            for x in batch:
                if x.bind.item.id in missed:
                    self.buffer.add(x)
            rows = [r for r in rows if r["status"] != "missed"]
            batch = [x for x in batch if x.bind.item.id not in missed]
        self.record_sends((x.at, x.bind.service.id, x.bind.campaign.id, x.bind.campaign.user_id, x.result.outcome) for x in batch)
        for sid, x in {x.bind.service.id: x for x in throttled}.items():
            s = x.bind.service
            self.events.service(sid, "throttled", f"throttled by the provider: {x.result.error_code}", now,
                                {"retry_after": x.result.retry_after,
                                 "until": s.throttled_until.isoformat() if s.throttled_until else None})
        frozen = [s for s in freeze if s.id in frozen_ids]
        for s, written in live:
            s.written_live = written
        for s in freeze:
            self.to_freeze.discard(s.id)
        for s in frozen:
            log.error("service_frozen service=%s reason=%s", s.name, s.abnormal_reason)
            self.events.service(s.id, "frozen", s.abnormal_reason or "", now)
            self.events.alert(s.id, "service_frozen", f"{s.name}: {s.abnormal_reason}", now)
            self.mark_dirty(set(self.state.service_users.get(s.id, ())))
        self._publish_progress(rows, now)
        if self.metrics is not None:
            self._gauge_queue_depth()
            if frozen:
                self.count_frozen()
        refunds: dict[uuid.UUID, int] = {}
        by_id = {x.bind.item.id: x for x in batch if x.result.outcome in ("throttled", "not_sent")}
        for r in rows:
            if r["id"] is None:
                continue  # a per-campaign count of settled results
            x = by_id[r["id"]]
            if r["status"] == "pending":
                # Back to the front of its campaign's buffer: the claim cursor is already past it.
                c = self.state.campaigns.get(x.bind.campaign.id)
                if c is not None:
                    c.buffer.appendleft(x.bind.item)
                    self.wake_user(c.user_id)
            else:
                refunds[r["campaign_id"]] = refunds.get(r["campaign_id"], 0) + 1
        if refunds:
            await self.refund_cancelled(refunds)
        released: dict[uuid.UUID, int] = {}
        for x in batch:
            if x.give_back:
                self.touch_counters(x.bind.service.id)  # given back in memory by the sender
            if x.release:
                released[x.bind.campaign.id] = released.get(x.bind.campaign.id, 0) + 1
        if released:
            await self.refund_unrendered(released)
        await self.maybe_complete({x.bind.campaign.id for x in batch})

    def _on_isolated(self, x: Settlement, exc: BaseException, rewritten: bool) -> None:
        log.error("settle_result_refused subtask=%s service=%s outcome=%s rewritten=%s error=%r",
                  x.bind.item.id, x.bind.service.name, x.result.outcome, rewritten, exc)
        if self.metrics is not None:
            self.metrics.settle_isolated(rewritten)

    def _gauge_queue_depth(self) -> None:
        """At most once a second while busy (the sum walks every active campaign, too much for
        every flush), and whenever the engine has gone quiet, so the last value is current."""
        t = time.monotonic()
        quiet = not self.sends_open() and not len(self.buffer)
        if self.metrics is not None and (quiet or t >= self._depth_at + DEPTH_EVERY):
            self._depth_at = t
            self.metrics.set_queue_depth(sum(len(c.buffer) for c in self.state.campaigns.values()))

    def count_frozen(self) -> None:
        if self.metrics is not None:
            self.metrics.set_frozen(sum(1 for s in self.state.services.values() if s.abnormal_frozen))

    def _publish_progress(self, rows: list[asyncpg.Record], now: datetime) -> None:
        """Live only (not the event log): what this flush settled, per campaign."""
        moved: dict[uuid.UUID, dict[str, int]] = {}
        for r in rows:
            counts = moved.get(r["campaign_id"])
            if counts is None:
                counts = moved[r["campaign_id"]] = {"sent": 0, "failed": 0, "requeued": 0}
            status = r["status"]
            counts[status if status == "sent" or status == "failed" else "requeued"] += r["n"]
        for cid, counts in moved.items():
            c = self.state.campaigns.get(cid)
            data: dict[str, object] = dict(counts)
            message = ""
            if c is not None:
                data["user_id"] = str(c.user_id)
                data["campaign"] = c.name
                message = f"{c.name}: +{counts['sent']} sent, +{counts['failed']} failed"
            self.events.sink.publish(EngineEvent(subject="campaign", kind="progress", id=str(cid), message=message,
                                                 data=data, at=now))

    async def refund_cancelled(self, refunds: dict[uuid.UUID, int]) -> None:
        """Throttled requests of campaigns cancelled meanwhile were never delivered: refund them."""
        from engine.dispatch.campaign_control import refund_units

        for campaign_id, n in refunds.items():
            async with self.write_lock:
                await refund_units(self.pool, campaign_id, n, "throttled request of a cancelled campaign")

    async def refund_unrendered(self, released: dict[uuid.UUID, int]) -> None:
        """Render failures were never sends: their quota units go back to the campaign's owner."""
        from engine.dispatch.campaign_control import release_units

        for campaign_id, n in released.items():
            async with self.write_lock:
                units = await release_units(self.pool, campaign_id, n, "email could not be rendered")
            c = self.state.campaigns.get(campaign_id)
            if c is not None:
                c.reserved -= units
                c.released += units

    async def maybe_complete(self, campaign_ids: set[uuid.UUID]) -> None:
        """Complete the campaigns whose every subtask is settled (the database has the last word)."""
        ready = [cid for cid in campaign_ids
                 if (c := self.state.campaigns.get(cid)) is not None and not c.has_pending and c.in_flight == 0]
        if ready and (len(self.buffer) or self._unsettled):
            # Results still waiting to be written (or being written by the other flush) keep
            # their campaigns' rows `sending`: asking now would only look through the
            # campaign's subtasks to find them.
            waiting = {x.bind.campaign.id for x in self.buffer.items()} | set(self._unsettled)
            ready = [cid for cid in ready if cid not in waiting]
        if not ready:
            return
        async with self.write_lock:
            completed = await self.queries.complete(ready, self.clock.now())
            if completed:
                # A completed campaign's requests are in its services' rows too.
                await self.flush_counters()
        for cid in completed:
            self.state.drop_campaign(cid)
