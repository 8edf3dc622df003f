"""The dispatcher: per-service timers on a heap; a freed service gets one subtask (fairly), the
binds of one tick are written in one statement BEFORE the provider calls (the send path is
sender.py), and results settle through a write-through buffer (settler.py)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections import deque
from datetime import datetime, timedelta
from typing import Callable

import asyncpg

from engine.dispatch.claims import Claimer
from engine.dispatch.connection_wait import ConnectionWait
from engine.dispatch.dispatch_queries import DispatchQueries, Fence
from engine.dispatch.domain_gate import DomainGate
from engine.dispatch.fair_queue import FairQueues
from engine.dispatch.hot_state import CampaignState, Claimed, HotState, ServiceState, UserState
from engine.dispatch.limited_pick import LimitedPick
from engine.dispatch.sender import FREEZE_AFTER, Bind, Sender
from engine.dispatch.settler import Settler
from engine.dispatch.waiting import wait_until
from engine.dispatch.write_gate import WriteGate
from engine.domain.fairness import pick_campaign
from engine.infra.clock import Clock
from engine.live.events import EventWriter
from engine.live.metrics import EngineMetrics

# Requests one service may have open at the provider at once: a slow or hanging provider holds
# at most this many (the interval alone would open one more every interval until the timeout).
MAX_IN_FLIGHT = 4
# Binds one tick writes at most: the rest of the due services are picked by the next tick, right
# after. Small, steady ticks: a bind statement stays short (its rows are locked for less time, a
# settle or a claim waits less behind it) and the first requests of a tick start sooner.
MAX_BINDS_PER_TICK = 1000
# Bind statements on their way at once (ticks do not wait for the previous tick's bind).
BINDS_OPEN = 2


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, state: HotState, claimer: Claimer, events: EventWriter,
                 write_lock: WriteGate, *, mark_dirty: Callable[[set[uuid.UUID]], None], reset_due: Callable[[], None],
                 settle_batch: int = 500, settle_delay: float = 0.02, freeze_after: int = FREEZE_AFTER,
                 max_in_flight: int = MAX_IN_FLIGHT, metrics: EngineMetrics | None = None, fence: Fence,
                 max_binds: int = MAX_BINDS_PER_TICK, binds_open: int = BINDS_OPEN,
                 gate: DomainGate | None = None):
        self.clock = clock
        self.state = state
        self.claimer = claimer
        self.events = events
        self.mark_dirty = mark_dirty
        self.reset_due = reset_due
        self.max_in_flight = max_in_flight
        self.max_binds = max_binds
        self.binds_open = binds_open
        self.fence = fence
        self.queries = DispatchQueries(pool, events, fence)
        self.settler = Settler(pool, clock, state, events, self.queries, write_lock, mark_dirty=mark_dirty,
                               wake_user=self.wake_user, sends_open=lambda: self.sender.open(),
                               settle_batch=settle_batch, settle_delay=settle_delay, metrics=metrics)
        # Services due while their connection pool is full wait unbound (connection_wait.py).
        self.waiting = ConnectionWait(wake=self.wake, rearm=lambda due, sid, gen: heapq.heappush(
            self._heap, (due, next(self._order), sid, gen)))
        self.sender = Sender(clock, state, events, fence, self.settler.buffer, wake_service=self.wake_service,
                             mark_dirty=mark_dirty, ask_freeze=self.settler.ask_freeze,
                             freeze_after=freeze_after, metrics=metrics, connection_freed=self.waiting.freed)
        # Per-domain limits and the engine-wide per-minute cap (domain_gate.py).
        self.gate = gate or DomainGate()
        self.sender.on_give_back = self._give_back
        # Services waiting for room under the per-minute cap, in the order they became free.
        self._capped: deque[ServiceState] = deque()
        # (ready time on the clock's monotonic scale, order, service, generation): intervals are
        # kept off the wall clock, which may be stepped; wall time is for persistence and quota days.
        self._heap: list[tuple[float, int, uuid.UUID, int]] = []
        # Services that may be out of the heap and not preparing (a superset: kept lazily), so
        # that new work wakes the idle ones among a user's services without a walk over all of them.
        self._idle: set[uuid.UUID] = set()
        self.fair = FairQueues(state)
        self.limited = LimitedPick(state, self.fair, self.gate, claimer, events)
        self._order = itertools.count()
        self._wake = asyncio.Event()
        # The engine's write lock (write_gate.py): a tick holds it shared (a settle may write
        # alongside: disjoint rows), everything else exclusively, so a reset or a reload never
        # lands inside a tick.
        self.write_lock = write_lock
        self.requests = 0
        # Told of every service whose counters a pick or a give-back moves (the write-behind).
        self.touch_counters: Callable[[uuid.UUID], None] = lambda service_id: None
        # Ticks run (a waiting engine does not spin: tests read it).
        self.ticks = 0
        # Called at the start of every tick under the write lock (the engine sets it).
        self.before_tick: Callable[[datetime], None] | None = None
        self._stopping = False
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
        if not s.in_heap and not s.preparing:
            if s.dispatchable:
                self.schedule(s)
            else:
                self._idle.add(s.id)  # for `wake_user`, once it is dispatchable again

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
        # The user's services that may be idle: a user may be mapped to thousands of services,
        # most of them armed or sending (the intersection walks the smaller of the two sets).
        candidates = self._idle & u.services
        if not candidates:
            return
        now = (self.clock.now(), self.clock.monotonic())  # one clock read for all
        services, idle = self.state.services, self._idle
        for sid in candidates:
            s = services.get(sid)
            if s is None or s.in_heap or s.preparing:
                idle.discard(sid)  # added again when it leaves the heap or its request starts
            elif s.dispatchable:
                idle.discard(sid)
                self.schedule(s, now)

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until `stop()`: it returns once the binds it began are written and their sends started,
        so a bind written is always a send started.

        A tick picks and counts in memory, then hands its bind to a task and goes on with the
        next tick: up to `binds_open` bind statements are on their way at once (on their own
        pooled connections; they bind disjoint subtasks, as each service has one request in
        preparation at most), so the picking never waits for the database's answer."""
        loop = asyncio.get_running_loop()
        binding: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                for t in [t for t in binding if t.done()]:
                    binding.discard(t)
                    t.result()  # a bind's error (a lost lease, a bug) is the loop's
                if not self.fence.held():
                    await self.fence.wait_held()  # a lapsed lease: no tick until it is renewed
                    continue
                if len(binding) >= self.binds_open:
                    await asyncio.wait(binding, return_when=asyncio.FIRST_COMPLETED)
                    continue
                self._wake.clear()
                self.ticks += 1
                # Each tick holds the lock (shared with other binds and settles) from its picks
                # until its bind is written: a reload or a reset never lands between the
                # in-memory counting of a bind and its write.
                await self.write_lock.acquire_shared()
                try:
                    now = self.clock.now()
                    if self.before_tick is not None:
                        self.before_tick(now)  # send windows: flags true to this tick's `now`
                    binds = self._collect(now, self.clock.monotonic())
                except BaseException:
                    self.write_lock.release_shared()
                    raise
                if binds:
                    task = loop.create_task(self._bind_and_release(binds))
                    task.add_done_callback(lambda _: self._wake.set())  # a failed bind is seen at once
                    binding.add(task)
                    continue
                self.write_lock.release_shared()
                deadline = None
                if self._heap:
                    deadline = self.clock.now() + timedelta(seconds=self._heap[0][0] - self.clock.monotonic())
                if self._capped:
                    # Woken when the cap's window frees a request, not before: nothing spins at the cap.
                    free = self.gate.cap_free_at()
                    if free is not None and (deadline is None or free < deadline):
                        deadline = free
                await wait_until(self.clock, deadline, self._wake)
        except BaseException:
            for t in binding:
                t.cancel()  # cancelled itself (a crash simulation) or failed: nothing waits for them
            raise
        if binding:
            await asyncio.gather(*binding)

    async def _bind_and_release(self, binds: list[Bind]) -> None:
        try:
            await self._bind(binds)
        finally:
            self.write_lock.release_shared()

    def _collect(self, now: datetime, mono: float) -> list[Bind]:
        binds: list[Bind] = []
        heap, services = self._heap, self.state.services
        gate = self.gate
        capped = gate.rate_limit > 0
        if self._capped:
            self._release_capped(now, mono)
        self.waiting.unpark()  # the longest waiting first: their due times are the oldest
        while len(binds) < self.max_binds and (heap and heap[0][0] <= mono or self.waiting.unpark()):
            due_at, _, sid, gen = heapq.heappop(heap)
            s = services.get(sid)
            if s is None or gen != s.heap_gen:
                continue  # a stale timer: the service was re-armed or removed
            s.in_heap = False
            self._idle.add(sid)
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
            if capped and gate.cap_room(now) <= 0:
                if not s.cap_wait:
                    s.cap_wait = True  # re-armed when the cap's window frees a request
                    self._capped.append(s)
                continue
            slots = s.provider.slots if s.provider is not None else None
            if slots is not None and slots.free <= 0:
                self.waiting.park(slots, due_at, s)  # no bind it cannot put on the wire
                continue
            b = self._pick(s, now, due_at) if not gate.on else self._pick_limited(s, now, mono, due_at)
            if b is None:
                continue  # idle: re-armed when one of its users gets work
            if slots is not None:
                slots.take()  # given back when the request is over (or not made)
                b.slots = slots
            if capped:
                gate.count(now)
            binds.append(b)
            # Not re-armed here: its next timer runs from this request's real start (`_started`).
            if s.remaining_today <= 0:
                if s.announced_used != s.quota_day_start:
                    s.announced_used = s.quota_day_start
                    self.events.service(s.id, "quota_used", f"used its daily quota of {s.daily_quota}", now,
                                        {"daily_quota": s.daily_quota, "next_reset": s.next_reset.isoformat()})
                self.mark_dirty(set(self.state.service_users.get(s.id, ())))
        return binds

    def _release_capped(self, now: datetime, mono: float) -> None:
        """As many cap-waiting services as the window has room for, longest waiting first."""
        room = self.gate.cap_room(now)
        while self._capped and room > 0:
            s = self._capped.popleft()
            s.cap_wait = False
            if s.dispatchable and not s.preparing:
                self.schedule(s, (now, mono))
                room -= 1
        if self.gate.rate_limit <= 0:
            for s in self._capped:  # the cap was lifted
                s.cap_wait = False
                self.wake_service(s)
            self._capped.clear()

    def _pick_limited(self, s: ServiceState, now: datetime, mono: float, due: float) -> Bind | None:
        """`_pick` with domain groups defined (limited_pick.py)."""
        found = self.limited.find(s.id, now)
        if found is None:
            blocked = self.gate.blocked_until
            if blocked is not None:
                # Only domain limits hold it back: try again the moment the earliest block lifts. Not
                # marked in the heap, so new work (a claim of other domains) still wakes it at once.
                s.heap_gen += 1
                at = mono + max(0.0, (blocked - now).total_seconds())
                heapq.heappush(self._heap, (at, next(self._order), s.id, s.heap_gen))
            return None
        u, c, item = found
        return self._bound(s, u, c, item, now, due)

    def _give_back(self, b: Bind) -> None:
        if self.gate.on or self.gate.rate_limit > 0:
            self.gate.give_back(b.item.email, b.service.id, b.at)

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
        return self._bound(s, u, c, c.buffer.popleft(), now, due)

    def _bound(self, s: ServiceState, u: UserState, c: CampaignState, item: Claimed, now: datetime,
               due: float) -> Bind:
        st = self.state
        cid = c.id
        c.taken += 1
        self.claimer.want(c)
        u.last_campaign = cid
        # The daily count is taken now and given back only if the request turns out not to count
        # (throttled, or never made). `last_request_at` is provisional (the bind's time) until
        # the request is handed to the provider; until then the service is `preparing`.
        prev = s.last_request_at
        self.touch_counters(s.id)
        s.last_request_at = now
        s.preparing = True
        self._idle.discard(s.id)
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
                self.sender.start(b)
            else:
                # Cancelled (or otherwise settled) since it was claimed: nothing was sent.
                self.sender.give_back(b.service)
                self.touch_counters(b.service.id)
                self._give_back(b)
                b.campaign.in_flight -= 1
                self.sender.not_started(b)

    # -- stop ---------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Let in-flight sends finish (their results are settled), up to `timeout` seconds."""
        await self.sender.drain(timeout)

    def abandon(self) -> None:
        """Crash simulation: drop in-flight sends without settling them."""
        self.sender.abandon()
