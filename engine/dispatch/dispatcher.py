"""The dispatcher: per-service timers on a heap; a freed service gets one subtask (fairly), the
binds of one tick are written in one statement BEFORE the provider calls, and results settle
through a write-through buffer."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Coroutine

import asyncpg

from engine.dispatch.claims import Claimer
from engine.dispatch.dispatch_queries import (
    DispatchQueries,
    Fence,
    Freeze,
    ServiceLive,
    SettleBatch,
    Throttled,
)
from engine.dispatch.fair_queue import FairQueues
from engine.dispatch.hot_state import (
    EPOCH,
    CampaignState,
    Claimed,
    HotState,
    ServiceState,
)
from engine.dispatch.recipient_links import RecipientLinks
from engine.dispatch.settle_buffer import TimedOverflowBuffer
from engine.dispatch.waiting import wait_until
from engine.domain.errors import TemplateError
from engine.domain.fairness import pick_campaign
from engine.infra.clock import Clock
from engine.infra.db import is_transient
from engine.live.events import EngineEvent, EventWriter
from engine.live.metrics import EngineMetrics
from engine.providers.base import Message, SendResult
from engine.templating.rendering import contact_vars, render

log = logging.getLogger("edm.engine.dispatcher")

FREEZE_AFTER = 10
# Services whose interval is at least this long announce each wait (`service.interval_started`):
# a wait an operator can watch. Shorter intervals would turn the stream into one event per send.
INTERVAL_EVENT_MIN = 5
# Requests one service may have open at the provider at once: a slow or hanging provider holds
# at most this many (the interval alone would open one more every interval until the timeout).
MAX_IN_FLIGHT = 4
# Seconds between two updates of the queue-depth gauge (real time: it only paces a metric).
DEPTH_EVERY = 1.0


@dataclass(slots=True)
class Bind:
    item: Claimed
    campaign: CampaignState
    service: ServiceState
    from_address: str
    at: datetime
    # When the service became free (its timer, on the monotonic scale), and its previous
    # request's start (wall time).
    due: float
    prev_request_at: datetime | None
    # Its number among the service's requests (set when it starts).
    seq: int = -1


@dataclass(slots=True)
class Settlement:
    bind: Bind
    result: SendResult
    at: datetime
    # The request does not count against the service (throttled, or never made).
    give_back: bool = False
    # Never offered to a provider (the email could not be rendered): the owner's unit comes back.
    release: bool = False


def _quarantine(x: Settlement, exc: BaseException) -> Settlement:
    """What a result the database refused is written as: a failure with a clean error (the
    request was made, its outcome cannot be stored: at most once, never resent)."""
    state = getattr(exc, "sqlstate", None)
    error = SendResult.failed("SETTLE_REJECTED", f"the result could not be stored ({type(exc).__name__}"
                                                 f"{' ' + state if state else ''}); original outcome: {x.result.outcome}")
    return Settlement(x.bind, error, x.at, give_back=x.give_back)


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, state: HotState, claimer: Claimer, events: EventWriter,
                 write_lock: asyncio.Lock, *, mark_dirty: Callable[[set[uuid.UUID]], None], reset_due: Callable[[], None],
                 settle_batch: int = 500, settle_delay: float = 0.02, freeze_after: int = FREEZE_AFTER,
                 max_in_flight: int = MAX_IN_FLIGHT, metrics: EngineMetrics | None = None, fence: Fence):
        self.pool = pool
        self.metrics = metrics
        self.clock = clock
        self.state = state
        self.claimer = claimer
        self.events = events
        self.mark_dirty = mark_dirty
        self.reset_due = reset_due
        self.freeze_after = freeze_after
        self.max_in_flight = max_in_flight
        self.fence = fence
        self.queries = DispatchQueries(pool, events, fence)
        self.settle: TimedOverflowBuffer[Settlement] = TimedOverflowBuffer(
            self._flush, max_size=settle_batch, max_delay=settle_delay, transient=is_transient,
            quarantine=_quarantine, on_isolated=self._on_isolated)
        # (ready time on the clock's monotonic scale, order, service, generation): intervals are
        # kept off the wall clock, which may be stepped; wall time is for persistence and quota days.
        self._heap: list[tuple[float, int, uuid.UUID, int]] = []
        self.fair = FairQueues(state)
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._sends: set[asyncio.Task[None]] = set()
        self._to_freeze: set[uuid.UUID] = set()
        # Serialises the engine's own writes (binds, settlements, pauses, completions, resets):
        # they touch the same services and campaigns rows, and one writer at a time cannot
        # deadlock with itself. It also keeps a reset or a reload from landing inside a tick.
        self.write_lock = write_lock
        self.requests = 0
        # Called at the start of every tick under the write lock (the engine sets it).
        self.before_tick: Callable[[datetime], None] | None = None
        self._stopping = False
        self._depth_at = -DEPTH_EVERY
        # Per-recipient unsubscribe links and headers (feedback); None sends messages as rendered.
        self.links: RecipientLinks | None = None
        # Users of a start group whose claims are not all back yet (see start_group.py).
        self._held = self.fair.held

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # -- timers -------------------------------------------------------------------------------

    def schedule(self, s: ServiceState, now: tuple[datetime, float] | None = None) -> None:
        """(Re)arm a service's timer at its ready time (or now, for an idle service woken by work);
        `now` is one (wall, monotonic) reading of the clock."""
        if s.preparing:
            return  # re-armed when its request starts (`_started`)
        wall, mono = now if now is not None else (self.clock.now(), self.clock.monotonic())
        s.heap_gen += 1
        s.in_heap = True
        heapq.heappush(self._heap, (max(s.ready_mono(wall, mono), mono), next(self._order), s.id, s.heap_gen))
        self._wake.set()

    def wake_service(self, s: ServiceState) -> None:
        if s.dispatchable and not s.in_heap and not s.preparing:
            self.schedule(s)

    def hold(self, users: set[uuid.UUID]) -> None:
        """Offer these users to no service until `release`."""
        self._held |= users

    def release(self, users: set[uuid.UUID]) -> None:
        users &= self._held
        self._held -= users
        for uid in users:
            self.wake_user(uid)

    def wake_user(self, user_id: uuid.UUID) -> None:
        """The user may have new runnable work: queue it on its services and re-arm idle ones."""
        if user_id in self._held:
            return  # offered with the rest of its start group
        u = self.state.users.get(user_id)
        if u is None:
            return
        self.fair.offer(u)
        # One clock read for all: a user may be mapped to thousands of services.
        now = (self.clock.now(), self.clock.monotonic())
        services = self.state.services
        for sid in u.services:
            s = services.get(sid)
            if s is not None and not s.in_heap and s.dispatchable and not s.preparing:
                self.schedule(s, now)

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until `stop()`: it returns between ticks, so a bind written is always a send started."""
        while not self._stopping:
            if not self.fence.held():
                await self.fence.wait_held()  # a lapsed lease: no tick until it is renewed
                continue
            self._wake.clear()
            # One tick under the lock: a reload or a reset never lands between the in-memory
            # counting of a bind and its write.
            async with self.write_lock:
                now = self.clock.now()
                if self.before_tick is not None:
                    self.before_tick(now)  # send windows: flags true to this tick's `now`
                binds = self._collect(now, self.clock.monotonic())
                if binds:
                    await self._bind(binds)
            if binds:
                continue
            deadline = None
            if self._heap:
                deadline = self.clock.now() + timedelta(seconds=self._heap[0][0] - self.clock.monotonic())
            await wait_until(self.clock, deadline, self._wake)

    def _collect(self, now: datetime, mono: float) -> list[Bind]:
        binds: list[Bind] = []
        heap, services = self._heap, self.state.services
        while heap and heap[0][0] <= mono:
            due_at, _, sid, gen = heapq.heappop(heap)
            s = services.get(sid)
            if s is None or gen != s.heap_gen:
                continue  # a stale timer: the service was re-armed or removed
            s.in_heap = False
            if not s.dispatchable:
                continue  # re-armed by enable / unfreeze / reset
            if now >= s.next_reset:
                # The quota day is over: no request until the reset task has opened the next.
                s.awaiting_reset = True
                self.reset_due()
                continue
            if s.ready_mono(now, mono) > mono:
                self.schedule(s, (now, mono))  # a throttle extended the freeze after the timer was set
                continue
            if s.in_flight >= self.max_in_flight:
                s.slot_wait = True  # re-armed when one of its requests comes back
                continue
            b = self._pick(s, now, due_at)
            if b is None:
                continue  # idle: re-armed when one of its users gets work
            binds.append(b)
            # Not re-armed here: its next timer runs from this request's real start (`_started`).
            if s.remaining_today <= 0:
                if s.announced_used != s.quota_day_start:
                    s.announced_used = s.quota_day_start
                    self.events.service(s.id, "quota_used", f"used its daily quota of {s.daily_quota}", now,
                                        {"daily_quota": s.daily_quota, "next_reset": s.next_reset.isoformat()})
                self.mark_dirty(set(self.state.service_users.get(s.id, ())))
        return binds

    def _pick(self, s: ServiceState, now: datetime, due: float) -> Bind | None:
        """Fairness: the mapped user served least recently, then that user's next campaign."""
        st = self.state
        u = self.fair.pick(s.id)
        if u is None:
            return None
        if len(u.campaigns) == 1:
            cid: uuid.UUID | None = u.campaigns[0]  # the pick checked it is runnable
        else:
            cid = pick_campaign(u.campaigns, st.runnable_campaigns(u.id), u.last_campaign)
        assert cid is not None, "a queued user always has a runnable campaign"
        c = st.campaigns[cid]
        item = c.buffer.popleft()
        c.taken += 1
        self.claimer.want(c)
        u.last_campaign = cid
        # The daily count is taken now and given back only if the request turns out not to count
        # (throttled, or never made). `last_request_at` is provisional (the bind's time) until
        # the request is handed to the provider; until then the service is `preparing`.
        prev = s.last_request_at
        s.last_request_at = now
        s.preparing = True
        s.used_today += 1
        s.remaining_today -= 1
        st.serve_counter += 1
        u.last_served = st.serve_counter
        c.in_flight += 1
        return Bind(item, c, s, f"{c.sender_name}@{s.domain}", now, due, prev)

    async def _bind(self, binds: list[Bind]) -> None:
        unbound = await self.queries.bind([b.item.id for b in binds], [b.service.id for b in binds],
                                          [b.from_address for b in binds], [b.at for b in binds])
        for b in binds:
            if b.item.id not in unbound:
                self.requests += 1
                self._spawn(self._send(b))
            else:
                # Cancelled (or otherwise settled) since it was claimed: nothing was sent.
                self._give_back(b.service)
                b.campaign.in_flight -= 1
                self._not_started(b)

    def _started(self, b: Bind) -> None:
        """The request is handed to the provider now: the service's interval runs from here."""
        s = b.service
        start, mono = self.clock.now(), self.clock.monotonic()
        s.last_request_at = start
        s.last_start_mono = mono
        s.preparing = False
        s.in_flight += 1
        b.seq = s.results.start()
        if s.send_interval >= INTERVAL_EVENT_MIN:
            self.events.service(s.id, "interval_started", f"waits {s.send_interval} s", start,
                                {"seconds": s.send_interval,
                                 "until": (start + timedelta(seconds=s.send_interval)).isoformat()})
        if self.metrics is not None:
            # Request start minus the moment its service became free (bind, render and all).
            self.metrics.lateness(mono - b.due)
        self.wake_service(s)

    def _not_started(self, b: Bind) -> None:
        """No request was made after all: the interval still runs from the previous one."""
        s = b.service
        if s.last_request_at == b.at:
            s.last_request_at = b.prev_request_at
        s.preparing = False
        self.wake_service(s)

    def _give_back(self, s: ServiceState) -> None:
        """A request that does not count after all; a service back from 0 may lift quota pauses."""
        s.used_today -= 1
        s.remaining_today += 1
        if s.remaining_today == 1:
            self.mark_dirty(set(self.state.service_users.get(s.id, ())))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # loop.create_task, not ensure_future: the argument is known to be a coroutine, and
        # ensure_future's type checks cost as much as the task itself at thousands a second.
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    # -- results ------------------------------------------------------------------------------

    async def _send(self, b: Bind) -> None:
        s, c, item = b.service, b.campaign, b.item
        # Rendered here rather than in the tick: the tick stays short, so services are bound
        # close to their free time. The row is already `sending`; a render failure settles it.
        links = self.links
        try:
            variables = contact_vars(item.email, item.name, item.fields)
            if links is not None:  # feedback: {{unsubscribe_url}}
                variables.update(links.variables(item.id))
            rendered = render(c.templates[item.template_id], variables)
        except (TemplateError, KeyError) as exc:
            if b.at >= s.quota_day_start:
                self._give_back(s)
            c.in_flight -= 1
            self._not_started(b)
            self.settle.add(Settlement(b, SendResult.failed("TEMPLATE_ERROR", str(exc)[:500]), self.clock.now(),
                                       give_back=True, release=True))
            return
        message = Message(subtask_id=str(item.id), campaign_id=str(c.id), from_address=b.from_address,
                          to=item.email, subject=rendered.subject, html=rendered.html, text=rendered.text,
                          timeout=float(s.request_timeout))
        if links is not None:  # feedback: footer link, List-Unsubscribe headers, SMTP tracking
            message = links.finish(message, item.id, track=s.provider_kind == "smtp")
        assert s.provider is not None, "service without a provider"
        self._started(b)
        try:
            if self.fence.held():
                result = await s.provider.send(message)
            else:
                # The lease ended since the bind (this process was paused or cut off): a leader
                # never sends after its lease. Not a request: it never left this machine, so it
                # goes back to pending, counted nowhere (not a throttle of the provider's).
                result = SendResult.not_sent("LEASE_LOST", "not sent: the engine's lease ended first")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug is this request's failure, not the engine's
            log.exception("provider_crashed service=%s", s.name)
            result = SendResult.failed("PROVIDER_ERROR", f"{type(exc).__name__}: {exc}"[:500])
        now = self.clock.now()
        s.in_flight -= 1
        # The failure streak is one of requests: results count in the order their requests started.
        for outcome, error in s.results.finish(b.seq, (result.outcome, result.error)):
            self._count(s, outcome, error)
        if s.slot_wait:
            s.slot_wait = False
            self.wake_service(s)
        if result.outcome == "not_sent" and b.at >= s.quota_day_start:
            self._give_back(s)  # local congestion: the provider never saw it, nothing counts
        if result.outcome == "throttled":
            if b.at >= s.quota_day_start:
                self._give_back(s)
            extend = max(result.retry_after or 0.0, float(s.send_interval))
            until = now + timedelta(seconds=extend)
            s.throttled_until = max(s.throttled_until or EPOCH, until)
            self.wake_service(s)
        c.in_flight -= 1
        if self.metrics is not None:
            self.metrics.sent(s.name, result.outcome)
        self.settle.add(Settlement(b, result, now, give_back=result.outcome in ("throttled", "not_sent")))

    def _count(self, s: ServiceState, outcome: str, error: str | None) -> None:
        if outcome == "sent":
            s.consecutive_failures = 0
        elif outcome == "failed":
            s.consecutive_failures += 1
            if s.consecutive_failures >= (s.freeze_after or self.freeze_after) and not s.abnormal_frozen:
                s.abnormal_frozen = True
                s.abnormal_reason = f"{s.consecutive_failures} consecutive failures, last: {error}"[:500]
                self._to_freeze.add(s.id)

    async def _flush(self, batch: list[Settlement]) -> None:
        now = self.clock.now()
        cols = SettleBatch([], [], [], [], [], [], [], [])
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
        # Only services whose failure count or throttle moved since last written: a run of
        # successes writes no services row here at all.
        services = {x.bind.service.id: x.bind.service for x in batch
                    if x.bind.service.written_live != (x.bind.service.consecutive_failures,
                                                       x.bind.service.throttled_until)}
        throttled = [x for x in batch if x.result.outcome == "throttled"]
        # An unfreeze (or a reload) since the failure that asked for it cancels a freeze.
        self._to_freeze.difference_update([sid for sid in self._to_freeze
                                           if (sv := self.state.services.get(sid)) is None or not sv.abnormal_frozen])
        freeze = [services[sid] for sid in list(self._to_freeze) if sid in services]
        async with self.write_lock:
            live = [(s, (s.consecutive_failures, s.throttled_until)) for s in services.values()]
            rows, frozen_ids = await self.queries.settle(
                cols, [ServiceLive(s.id, *v) for s, v in live],
                [Throttled(x.bind.service.id, f"throttled by the provider: {x.result.error_code} {x.result.error}"[:500],
                           {"retry_after": x.result.retry_after,
                            "until": x.bind.service.throttled_until.isoformat()
                            if x.bind.service.throttled_until else None}, x.at) for x in throttled],
                [Freeze(s.id, s.abnormal_reason or f"{s.consecutive_failures} consecutive failures",
                        s.consecutive_failures) for s in freeze], now)
        for sid, x in {x.bind.service.id: x for x in throttled}.items():
            s = x.bind.service
            self.events.service(sid, "throttled", f"throttled by the provider: {x.result.error_code}", now,
                                {"retry_after": x.result.retry_after,
                                 "until": s.throttled_until.isoformat() if s.throttled_until else None})
        frozen = [s for s in freeze if s.id in frozen_ids]
        for s, written in live:
            s.written_live = written
        for s in freeze:
            self._to_freeze.discard(s.id)
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
        quiet = not self._sends and not len(self.settle)
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
        if not ready:
            return
        async with self.write_lock:
            completed = await self.queries.complete(ready, self.clock.now())
        for cid in completed:
            self.state.drop_campaign(cid)

    # -- stop ---------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Let in-flight sends finish (their results are settled), up to `timeout` seconds."""
        if self._sends:
            await asyncio.wait(set(self._sends), timeout=timeout)

    def abandon(self) -> None:
        """Crash simulation: drop in-flight sends without settling them."""
        for t in list(self._sends):
            t.cancel()
