"""The send path of one bound subtask: render, hand it to the provider, count the outcome on its
service, and queue the result for settlement."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Callable, Iterable

from engine.dispatch.dispatch_queries import Fence
from engine.dispatch.hot_state import (
    EPOCH,
    CampaignState,
    Claimed,
    HotState,
    ServiceState,
)
from engine.dispatch.recipient_links import RecipientLinks
from engine.dispatch.settle_buffer import TimedOverflowBuffer
from engine.domain.errors import TemplateError
from engine.infra.clock import Clock
from engine.live.events import EventWriter
from engine.live.metrics import EngineMetrics
from engine.providers.base import ConnectionSlots, Message, SendResult, request_id_of
from engine.templating.rendering import contact_vars, render

log = logging.getLogger("edm.engine.dispatcher")

FREEZE_AFTER = 10
# Services whose interval is at least this long announce each wait (`service.interval_started`):
# a wait an operator can watch. Shorter intervals would turn the stream into one event per send.
INTERVAL_EVENT_MIN = 5
# Seconds of rendering the starter does before it lets the requests rendered so far go out,
# and the most it does on a busy loop (its share then shrinks rather than the loop's turns
# waiting behind a whole tick's rendering: answers, settles and API requests wait at most this).
START_SLICE = 0.002
MAX_SLICE = 0.010


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
    # The pooled connection counted for it from the bind on (None: its adapter needs none).
    slots: ConnectionSlots | None = None


@dataclass(slots=True)
class Settlement:
    bind: Bind
    result: SendResult
    at: datetime
    # The request does not count against the service (throttled, or never made).
    give_back: bool = False
    # Never offered to a provider (the email could not be rendered): the owner's unit comes back.
    release: bool = False


class Sender:
    """Puts each bound subtask's request in its provider's hands and accounts for what came of it.

    No task of its own per request: a provider that answers at once (`answer_now`) is answered
    inline, and an awaited `send` becomes the one task asyncio needs to run it, whose done
    callback does the accounting."""

    def __init__(self, clock: Clock, state: HotState, events: EventWriter, fence: Fence,
                 settle: TimedOverflowBuffer[Settlement], *, wake_service: Callable[[ServiceState], None],
                 mark_dirty: Callable[[set[uuid.UUID]], None], ask_freeze: Callable[[uuid.UUID], None],
                 freeze_after: int = FREEZE_AFTER, metrics: EngineMetrics | None = None,
                 connection_freed: Callable[[ConnectionSlots], None] = lambda slots: None):
        self.clock = clock
        self.state = state
        self.events = events
        self.fence = fence
        self.settle = settle
        self.wake_service = wake_service
        self.mark_dirty = mark_dirty
        self.ask_freeze = ask_freeze
        self.freeze_after = freeze_after
        self.metrics = metrics
        self.connection_freed = connection_freed
        # Requests at a provider, awaiting its answer (each its `send` as a task).
        self.tasks: set[asyncio.Task[SendResult]] = set()
        # Bound requests not yet started, and the one task that starts them (`_start_queued`).
        self._to_start: deque[Bind] = deque()
        self._starter: asyncio.Task[None] | None = None
        # Per-recipient unsubscribe links and headers (feedback); None sends messages as rendered.
        self.links: RecipientLinks | None = None
        # A bind that did not count after all, for the per-domain and per-minute counts (the dispatcher's).
        self.on_give_back: Callable[[Bind], None] = lambda b: None

    def open(self) -> int:
        """Requests bound and not yet answered (queued to start, or at their provider)."""
        return len(self.tasks) + len(self._to_start) + (self._starter is not None)

    def start(self, b: Bind) -> None:
        """Queue a bound request: the starter puts the queued requests on the wire in bind order."""
        self._to_start.append(b)
        if self._starter is None:
            self._starter = asyncio.get_running_loop().create_task(self._start_queued())

    async def _start_queued(self) -> None:
        """Render, hand over and put on the wire the queued requests, a few at a time.

        Starting every request of a tick at once put the first one on the wire only after the
        whole tick was rendered and prepared: aiohttp writes a request's bytes in a task of its
        own (before Python 3.12), queued behind every request task already waiting. Here the
        requests go in slices; each slice gets two turns of the loop (its request tasks build their
        requests, then their writes run) before the next slice is rendered, and other work
        (answers, settlements) interleaves at every turn. A slice renders for START_SLICE seconds,
        or for half as long as the last two turns took: on a busy loop the turns are slow, and
        smaller slices would make the starter, not the services, set the pace. Never for more
        than MAX_SLICE: a stalled turn (the process descheduled) must not let the next slice
        render a whole tick before anything of it goes out."""
        queue = self._to_start
        loop = asyncio.get_running_loop()
        budget = START_SLICE
        try:
            while queue:
                on_the_way: list[Bind] = []
                until = loop.time() + budget
                while queue:
                    b = queue.popleft()
                    message = self._render(b)
                    if message is None:
                        continue  # settled as a template failure
                    self._started(b)
                    if self._hand_over(b, message):
                        on_the_way.append(b)
                    if loop.time() >= until:
                        break
                if not on_the_way:
                    # Every request of the slice was answered at once: nothing to put on the wire,
                    # but one turn of the loop for the others (settles, ticks) before the next.
                    await asyncio.sleep(0)
                    continue
                turns = loop.time()
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                budget = min(MAX_SLICE, max(START_SLICE, (loop.time() - turns) / 2))
                self._on_the_wire(on_the_way, self.clock.monotonic())
        finally:
            self._starter = None
            while queue:  # cancelled (a crash simulation): these are never made by this process
                self._release(queue.popleft())

    def _hand_over(self, b: Bind, message: Message) -> bool:
        """Give the request to its provider; True when it is on its way (answered later)."""
        provider = b.service.provider
        assert provider is not None, "service without a provider"
        if not self.fence.held():
            # The lease ended since the bind (this process was paused or cut off): a leader
            # never sends after its lease. Not a request: it never left this machine, so it
            # goes back to pending, counted nowhere (not a throttle of the provider's).
            self._answered(b, SendResult.not_sent("LEASE_LOST", "not sent: the engine's lease ended first"))
            return False
        try:
            result = provider.answer_now(message)
        except Exception as exc:  # an adapter bug is this request's failure, not the engine's
            result = self._crashed(b, exc)
        if result is not None:
            self._on_the_wire((b,), self.clock.monotonic())
            self._answered(b, result)
            return False
        task = asyncio.get_running_loop().create_task(provider.send(message))
        self.tasks.add(task)
        # Also when the task is cancelled before it ran (a crash simulation, a stop).
        task.add_done_callback(partial(self._done, b))
        return True

    def _on_the_wire(self, binds: Iterable[Bind], mono: float) -> None:
        """The requests have started: lateness is their real start minus the moment each one's
        service became free (tick, bind, render, the slices ahead)."""
        if self.metrics is not None:
            for b in binds:
                self.metrics.lateness(mono - b.due)

    def _done(self, b: Bind, task: asyncio.Task[SendResult]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            self._release(b)  # never settled by this process (a crash simulation)
            return
        exc = task.exception()
        self._answered(b, task.result() if exc is None else self._crashed(b, exc))

    def _crashed(self, b: Bind, exc: BaseException) -> SendResult:
        log.error("provider_crashed service=%s", b.service.name, exc_info=exc)
        return SendResult.failed("PROVIDER_ERROR", f"{type(exc).__name__}: {exc}"[:500])

    def _release(self, b: Bind) -> None:
        """The request is over (or will not be made): its pooled connection is free for another."""
        slots, b.slots = b.slots, None
        if slots is not None:
            slots.give()
            self.connection_freed(slots)

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
        self.wake_service(s)

    def not_started(self, b: Bind) -> None:
        """No request was made after all: the interval still runs from the previous one."""
        self._release(b)
        s = b.service
        if s.last_request_at == b.at:
            s.last_request_at = b.prev_request_at
        s.preparing = False
        self.wake_service(s)

    def give_back(self, s: ServiceState) -> None:
        """A request that does not count after all; a service back from 0 may lift quota pauses."""
        s.used_today -= 1
        s.remaining_today += 1
        if s.remaining_today == 1:
            self.mark_dirty(set(self.state.service_users.get(s.id, ())))

    def _render(self, b: Bind) -> Message | None:
        """The request's email, or None when it cannot be rendered (then settled as a failure)."""
        s, c, item = b.service, b.campaign, b.item
        # Rendered here rather than in the tick: the tick stays short, so services are bound
        # close to their free time. The row is already `sending`; a render failure settles it.
        links = self.links
        url = ""
        try:
            variables = contact_vars(item.email, item.name, item.fields)
            if links is not None:  # feedback: {{unsubscribe_url}}, signed once for the whole message
                variables["unsubscribe_url"] = url = links.unsubscribe_url(item.id)
            rendered = render(c.templates[item.template_id], variables)
        except (TemplateError, KeyError) as exc:
            if b.at >= s.quota_day_start:
                self.give_back(s)
            self.on_give_back(b)
            c.in_flight -= 1
            self.not_started(b)
            self.settle.add(Settlement(b, SendResult.failed("TEMPLATE_ERROR", str(exc)[:500]), self.clock.now(),
                                       give_back=True, release=True))
            return None
        sid = str(item.id)
        message = Message(subtask_id=sid, campaign_id=str(c.id), from_address=b.from_address,
                          to=item.email, subject=rendered.subject, html=rendered.html, text=rendered.text,
                          timeout=float(s.request_timeout), request_id=request_id_of(sid, item.attempt))
        if links is not None:  # feedback: footer link, List-Unsubscribe headers, SMTP tracking
            message = links.finish(message, item.id, url, track=s.provider_kind == "smtp")
        return message

    def _answered(self, b: Bind, result: SendResult) -> None:
        """The provider's answer (or why there was none): count it and queue it for settlement."""
        s, c = b.service, b.campaign
        now = self.clock.now()
        s.in_flight -= 1
        self._release(b)
        # The failure streak is one of requests: results count in the order their requests started.
        for outcome, error in s.results.finish(b.seq, (result.outcome, result.error)):
            self._count(s, outcome, error)
        if s.slot_wait:
            s.slot_wait = False
            self.wake_service(s)
        outcome = result.outcome
        give_back = outcome == "throttled" or outcome == "not_sent"
        if give_back:
            if b.at >= s.quota_day_start:
                self.give_back(s)  # the provider refused it, or never saw it: nothing counts
            self.on_give_back(b)
        if outcome == "throttled":
            extend = max(result.retry_after or 0.0, float(s.send_interval))
            until = now + timedelta(seconds=extend)
            s.throttled_until = max(s.throttled_until or EPOCH, until)
            self.wake_service(s)
        c.in_flight -= 1
        if self.metrics is not None:
            self.metrics.sent(s.name, outcome)
        self.settle.add(Settlement(b, result, now, give_back=give_back))

    def _count(self, s: ServiceState, outcome: str, error: str | None) -> None:
        if outcome == "sent":
            s.consecutive_failures = 0
        elif outcome == "failed":
            s.consecutive_failures += 1
            if s.consecutive_failures >= (s.freeze_after or self.freeze_after) and not s.abnormal_frozen:
                s.abnormal_frozen = True
                s.abnormal_reason = f"{s.consecutive_failures} consecutive failures, last: {error}"[:500]
                self.ask_freeze(s.id)

    async def drain(self, timeout: float) -> None:
        """Let in-flight sends finish (their results are settled), up to `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # The starter hands requests over while it runs: wait for those too.
        while (self.tasks or self._starter is not None) and (left := deadline - loop.time()) > 0:
            waiting: set[asyncio.Future[Any]] = set(self.tasks)
            if self._starter is not None:
                waiting.add(self._starter)
            await asyncio.wait(waiting, timeout=left)

    def abandon(self) -> None:
        """Crash simulation: drop in-flight sends without settling them."""
        if self._starter is not None:
            self._starter.cancel()
        for t in list(self.tasks):
            t.cancel()
        self._starter = None
        while self._to_start:  # the starter may be cancelled before it ever ran
            self._release(self._to_start.popleft())
