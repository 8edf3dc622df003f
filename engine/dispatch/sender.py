"""The send path of one bound subtask: render, hand it to the provider, count the outcome on its
service, and queue the result for settlement."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Coroutine

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
from engine.providers.base import Message, SendResult
from engine.templating.rendering import contact_vars, render

log = logging.getLogger("edm.engine.dispatcher")

FREEZE_AFTER = 10
# Services whose interval is at least this long announce each wait (`service.interval_started`):
# a wait an operator can watch. Shorter intervals would turn the stream into one event per send.
INTERVAL_EVENT_MIN = 5


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


class Sender:
    """Runs each bound subtask's request as its own task and accounts for what came of it."""

    def __init__(self, clock: Clock, state: HotState, events: EventWriter, fence: Fence,
                 settle: TimedOverflowBuffer[Settlement], *, wake_service: Callable[[ServiceState], None],
                 mark_dirty: Callable[[set[uuid.UUID]], None], ask_freeze: Callable[[uuid.UUID], None],
                 freeze_after: int = FREEZE_AFTER, metrics: EngineMetrics | None = None):
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
        self.tasks: set[asyncio.Task[None]] = set()
        # Per-recipient unsubscribe links and headers (feedback); None sends messages as rendered.
        self.links: RecipientLinks | None = None
        # A bind that did not count after all, for the per-domain and per-minute counts (the dispatcher's).
        self.on_give_back: Callable[[Bind], None] = lambda b: None

    def start(self, b: Bind) -> None:
        self._spawn(self._send(b))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # loop.create_task, not ensure_future: the argument is known to be a coroutine, and
        # ensure_future's type checks cost as much as the task itself at thousands a second.
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

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

    def not_started(self, b: Bind) -> None:
        """No request was made after all: the interval still runs from the previous one."""
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
                self.give_back(s)
            self.on_give_back(b)
            c.in_flight -= 1
            self.not_started(b)
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
            self.give_back(s)  # local congestion: the provider never saw it, nothing counts
        if result.outcome in ("throttled", "not_sent"):
            self.on_give_back(b)
        if result.outcome == "throttled":
            if b.at >= s.quota_day_start:
                self.give_back(s)
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
                self.ask_freeze(s.id)

    async def drain(self, timeout: float) -> None:
        """Let in-flight sends finish (their results are settled), up to `timeout` seconds."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)

    def abandon(self) -> None:
        """Crash simulation: drop in-flight sends without settling them."""
        for t in list(self.tasks):
            t.cancel()
