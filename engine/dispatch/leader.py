"""The engine: leadership (a lease with fencing), start-up recovery, the named background tasks
under a supervisor; the command surface the API calls (`deps.engine`) is command_surface.py.

A term of leadership: acquire the lease, recover, load the hot state, run the tasks. A task
that meets a transient database error is restarted with back-off; a lost lease ends the term
(no new binds; in-flight sends finish and settle) and the engine waits as a standby again; any
other error is a bug and stops the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable, Literal, Sequence

import asyncpg

from engine.dispatch.claims import Claimer
from engine.dispatch.command_surface import CHANNEL, CommandSurface
from engine.dispatch.counter_writer import CounterWriter
from engine.dispatch.dispatcher import Dispatcher
from engine.dispatch.domain_gate import DomainGate
from engine.dispatch.due import DueStarter
from engine.dispatch.start_group import StartGroup
from engine.dispatch.fanout import StartOutcome
from engine.dispatch.hot_commands import HotCommands, decode
from engine.dispatch.hot_loader import HotLoader, ProviderBuilder
from engine.dispatch.hot_state import CampaignState, HotState, ServiceState
from engine.dispatch.lease import Lease, LeaseLost, engine_name
from engine.dispatch.notices import NoticeListener
from engine.dispatch.pause_keeper import PauseKeeper
from engine.dispatch.recovery import RecoveryReport, load_domain_limits, recover
from engine.dispatch.resets import Resetter
from engine.dispatch.send_windows import WindowKeeper
from engine.dispatch.test_send import TestSender
from engine.dispatch.thaw import Thawer
from engine.dispatch.write_gate import WriteGate
from engine.domain.errors import EdmError
from engine.infra.clock import Clock
from engine.infra.config import Settings
from engine.infra.db import is_transient
from engine.dispatch.recipient_links import RecipientLinks
from engine.infra.secret_box import SecretBox
from engine.live.events import EventSink, EventWriter
from engine.live.metrics import EngineMetrics
from engine.live.send_minutes import SendMinutes

log = logging.getLogger("edm.engine")

# Longest pause between two attempts of a task that meets transient database errors.
MAX_RETRY_DELAY = 1.0


@dataclass(frozen=True)
class EngineOptions:
    """Tuning knobs (the defaults suit production; tests shorten the delays)."""

    # Smallest claim per campaign; busy campaigns claim up to twice what they used since. Small,
    # so a slow campaign (one service at a 1 s interval) holds a handful of subtasks in memory,
    # not a hundred: 10k running campaigns × 100 claimed rows were ~400 MB of the hot state.
    claim_batch: int = 16
    settle_batch: int = 500
    settle_delay: float = 0.02
    due_poll_seconds: float = 0.5
    # Campaigns saved within this many seconds of the first start as one group (start_group.py).
    start_gather_seconds: float = 0.5
    stop_timeout: float = 10.0
    freeze_after: int = 10
    # The leader lease: how long it lasts, how often the leader renews it (a standby polls at
    # the same pace, so it takes over within lease + renewal seconds of the last renewal).
    lease_seconds: float = 10.0
    renew_seconds: float = 2.0
    # Requests one service may have open at the provider at once.
    service_in_flight: int = 4
    # Binds one dispatcher tick writes at most (dispatcher.MAX_BINDS_PER_TICK), and bind
    # statements on their way at once (dispatcher.BINDS_OPEN).
    binds_per_tick: int = 1000
    binds_open: int = 2
    # Seconds between two write-behinds of the services' counters (counter_writer.py): what the
    # API shows of them lags the engine by at most this much; a crash loses nothing (recounted).
    counters_every: float = 2.0
    # Seconds added at start-up to each service's last recorded request: the row holds the
    # bind's time, and the request itself may have started up to this much later.
    restart_slack: float = 1.0
    # Real seconds between two looks for timed unfreezes written by others (thaw.py).
    thaw_poll_seconds: float = 1.0


class EngineStopped(EdmError):
    code = "ENGINE_STOPPED"


Role = Literal["idle", "standby", "leader", "stopped"]


class Engine(CommandSurface):
    def __init__(self, settings: Settings, pool: asyncpg.Pool, clock: Clock, providers: ProviderBuilder,
                 box: SecretBox, sink: EventSink, options: EngineOptions | None = None, *,
                 metrics: EngineMetrics | None = None):
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.providers = providers
        self.box = box
        self.events = EventWriter(sink)
        self.options = options or EngineOptions()
        self.metrics = metrics
        self.tz = settings.tz
        self.name = engine_name()
        self.lease = Lease(pool, self.name, seconds=self.options.lease_seconds,
                           renew_every=self.options.renew_seconds)
        self.role: Role = "idle"
        self.error: BaseException | None = None
        self.recovery: RecoveryReport | None = None
        self.terms = 0
        self.leader = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._notices: asyncio.Queue[str] = asyncio.Queue()
        self._build_parts()

    def _build_parts(self) -> None:
        """Fresh hot state and parts for a term: nothing of an earlier term's memory is trusted."""
        o = self.options
        self.state = HotState()
        self.events.names = self.state  # live events carry campaign and service names
        self.loader = HotLoader(self.pool, self.clock, self.tz, self.state, self.providers, self.box)
        # The engine's writes go one at a time, but for binds beside settles (write_gate.py).
        lock = WriteGate()
        self.claimer = Claimer(self.pool, self.state, self._on_filled, batch=o.claim_batch)
        self.pauses = PauseKeeper(self.pool, self.clock, self.state, self.events, self._on_running, lock)
        self.dispatcher = Dispatcher(self.pool, self.clock, self.state, self.claimer, self.events, lock,
                                     mark_dirty=self.pauses.mark, reset_due=lambda: self.resetter.wake(),
                                     settle_batch=o.settle_batch, settle_delay=o.settle_delay,
                                     freeze_after=o.freeze_after, max_in_flight=o.service_in_flight,
                                     metrics=self.metrics, fence=self.lease, max_binds=o.binds_per_tick,
                                     binds_open=o.binds_open, gate=DomainGate(self.tz, self.settings.send_rate_limit))
        self.counters = CounterWriter(self.pool, self.state, lock, self.lease, every=o.counters_every)
        self.dispatcher.touch_counters = self.dispatcher.settler.touch_counters = self.counters.touch
        self.dispatcher.settler.flush_counters = self.counters.flush_locked
        # Feedback: every message carries its signed unsubscribe link and List-Unsubscribe headers.
        self.dispatcher.sender.links = RecipientLinks(self.box.derive("recipient-links"), self.settings.public_base,
                                                      tracking=self.settings.smtp_tracking)
        self.resetter = Resetter(self.pool, self.clock, self.tz, self.state, self.events, lock, self._on_reset)
        self.resetter.before_reset_now = self.counters.flush_locked
        self.windows = WindowKeeper(self.clock, self.state, lock, self.pauses.mark, self.dispatcher.wake_user)
        self.dispatcher.before_tick = self.windows.advance
        self.loader.on_campaign = lambda c: self.windows.watch(c, self.clock.now())
        self.tester = TestSender(self.pool, self.clock, self.state, lock, self.pauses.mark, self.lease)
        self.due = DueStarter(self.pool, self.clock, self.events, self._on_started,
                              poll_seconds=o.due_poll_seconds, max_active=self.settings.max_concurrent_campaigns,
                              gather_seconds=o.start_gather_seconds)
        self.listener = NoticeListener(self.pool, CHANNEL, self._notices.put_nowait)
        self.commands = HotCommands(self.pool, self.state, self.loader, self.dispatcher, self.pauses, self.resetter,
                                    self.claimer, self.due, self.clock, self.settings.send_rate_limit)
        self.start_group = StartGroup(self.state, self.dispatcher)
        self.thaw = Thawer(self.pool, self.clock, self.box, self.events, lock,
                           on_thawed=lambda sid: self.commands.apply("unfrozen", sid),
                           on_kept=lambda sid, reason: self.commands.apply("frozen", sid, reason),
                           poll_seconds=o.thaw_poll_seconds)
        self.minutes = SendMinutes(self.pool, self.clock)
        self.dispatcher.settler.record_sends = self.minutes.record

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start in the background: become the leader at once, or wait as a standby."""
        self._main = asyncio.create_task(self._life(), name="engine")

    async def wait_leader(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.leader.wait(), timeout)

    async def wait(self) -> None:
        """Until the engine stops; raises what stopped it if it was not `stop()`."""
        assert self._main is not None
        await self._main

    async def _life(self) -> None:
        while True:
            if not await self._try_acquire():
                self.role = "standby"
                log.info("engine_standby waiting for the active engine's lease to end")
                await self.lease.acquire()
            try:
                await self._term()
                return  # stop() ended the term
            except LeaseLost as exc:
                log.error("engine_step_down reason=%s", exc)
                await self._shutdown(orderly=True, step_down=True)
                self._build_parts()

    async def _try_acquire(self) -> bool:
        try:
            return await self.lease.try_acquire()
        except Exception as exc:
            if not is_transient(exc):
                raise
            return False

    async def _term(self) -> None:
        self.role = "leader"
        self.terms += 1
        log.info("engine_leader name=%s epoch=%s", self.name, self.lease.epoch)
        self.recovery = await self._retrying("recovery", lambda: recover(self.pool, self.events, self.clock.now()))
        await self._retrying("load", self._load)
        if self._stopping:
            # stop() began while the term recovered or loaded and has already ended the term's
            # tasks (there were none): tasks started now would outlive it, on a closed pool.
            return
        self.leader.set()
        self._tasks = {name: asyncio.create_task(self._resilient(name, run), name=f"engine.{name}") for name, run in (
            ("dispatcher", self.dispatcher.run), ("claimer", self.claimer.run),
            ("settle", self.dispatcher.settler.buffer.run), ("pauses", self.pauses.run),
            ("resets", self.resetter.run), ("due", self.due.run),
            ("lease", self.lease.keep), ("notices", self.listener.run), ("commands", self._apply_notices),
            ("windows", self.windows.run), ("thaw", self.thaw.run), ("counters", self.counters.run),
            ("send_minutes", self.minutes.run),
        )}
        await self._supervise()

    async def _retrying(self, what: str, step: Callable[[], Awaitable[Any]]) -> Any:
        """`step()` until it gets past transient database errors (with back-off)."""
        failures = 0
        while True:
            try:
                return await step()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                delay = min(MAX_RETRY_DELAY, 0.1 * 2 ** min(failures - 1, 6))
                log.warning("engine_retry step=%s attempt=%d in=%.1fs error=%r", what, failures, delay, exc)
                await asyncio.sleep(delay)

    async def _resilient(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """A named task: restarted after transient database errors, so only bugs end it."""
        await self._retrying(name, run)

    async def _apply_notices(self) -> None:
        """Changes made through another process's API (a standby's), applied to the hot state."""
        while True:
            payload = await self._notices.get()
            try:
                kind, target, arg = decode(payload)
            except ValueError:
                log.error("engine_notice_malformed payload=%r", payload)
                continue
            try:
                await self.commands.apply(kind, target, arg)
            except BaseException:
                self._notices.put_nowait(payload)  # applied again after a transient error
                raise

    async def _supervise(self) -> None:
        done, _ = await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        if self._stopping:
            return  # tasks end because stop() ends them
        task = next(iter(done))
        exc = task.exception() if not task.cancelled() else None
        if isinstance(exc, LeaseLost):
            raise exc
        self.error = exc or RuntimeError(f"{task.get_name()} ended")
        log.critical("engine_task_died task=%s error=%r: the engine stops", task.get_name(), self.error)
        await self._shutdown(orderly=False)
        raise EngineStopped(f"engine task {task.get_name()} died: {self.error!r}") from exc

    async def stop(self) -> None:
        """Stop cleanly: no new sends, in-flight sends finish and settle, the lease is released."""
        if self._stopping:
            return
        if self.role != "leader" and self._main is not None:
            self._main.cancel()  # a standby (or a starting engine) only has its lease wait to end
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._main
        await self._shutdown(orderly=True)
        if self._main is not None:
            if not self._main.done():
                self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._main

    async def _shutdown(self, orderly: bool, step_down: bool = False) -> None:
        """End the term. A step-down keeps the engine alive (a standby again) and writes nothing
        to the lease; a stop releases it."""
        self._stopping = True
        self.leader.clear()
        if step_down:
            self.lease.forget()  # a bind waiting for the lease gives up: it will not come back
        dispatcher = self._tasks.get("dispatcher")
        if orderly and dispatcher is not None and not dispatcher.done():
            # Not cancelled: a bind statement is never cut off from the sends it promises.
            self.dispatcher.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(dispatcher), self.options.stop_timeout)
        for name in ("due", "thaw", "dispatcher", "claimer", "pauses", "resets", "lease", "notices", "commands",
                     "counters"):
            t = self._tasks.get(name)
            if t is not None and not t.done():
                t.cancel()
        if orderly:
            await self.dispatcher.drain(self.options.stop_timeout)
            settle = self._tasks.get("settle")
            self.dispatcher.settler.buffer.stop()
            if settle is not None and not settle.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(settle), self.options.stop_timeout)
            if not step_down:
                # The counters as they stand after the last settle (a stop between two
                # write-behinds); a leader stepping down leaves them to its successor's recount.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self.counters.flush()), self.options.stop_timeout)
            await self.minutes.drain()
        else:
            self.dispatcher.abandon()
        for t in self._tasks.values():
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks = {}
        await self.loader.close()
        if step_down:
            self._stopping = False
            self.role = "standby"
            return
        await self.lease.release()
        self.role = "stopped"

    async def abort(self) -> None:
        """Crash simulation for tests: drop everything without writing; the lease runs out."""
        self._stopping = True
        self.dispatcher.abandon()
        for t in self._tasks.values():
            t.cancel()
        if self._main is not None:
            self._main.cancel()
        await asyncio.gather(*self._tasks.values(), *([self._main] if self._main else []), return_exceptions=True)
        self.lease.forget()
        self.role = "stopped"

    # -- hot state ------------------------------------------------------------------------------

    async def _load(self) -> None:
        await self.loader.load_all()
        await load_domain_limits(self.pool, self.dispatcher.gate, self.settings.send_rate_limit, self.clock.now())
        slack = timedelta(seconds=self.options.restart_slack)
        for sv in self.state.services.values():
            if sv.last_request_at is not None:
                sv.last_request_at += slack
        # As loaded (the slack is for this term's timers only: not written back to the rows).
        self.counters.mark_written(self.state.services.values())
        self.start_group.begin((c.id, c.user_id) for c in self.state.campaigns.values())
        for c in self.state.campaigns.values():
            self.claimer.want(c)
        for sv in self.state.services.values():
            self.dispatcher.wake_service(sv)
        self.pauses.mark({c.user_id for c in self.state.campaigns.values()})
        self.dispatcher.settler.count_frozen()
        log.info("engine_loaded services=%d users=%d campaigns=%d", len(self.state.services),
                 len(self.state.users), len(self.state.campaigns))

    # -- callbacks from the parts ---------------------------------------------------------------

    async def _on_filled(self, c: CampaignState) -> None:
        self.start_group.filled(c.id)
        if c.buffer:
            self.dispatcher.wake_user(c.user_id)
        elif not c.has_pending and c.in_flight == 0:
            await self.dispatcher.settler.maybe_complete({c.id})

    def _on_running(self, user_id: uuid.UUID) -> None:
        self.dispatcher.wake_user(user_id)

    def _on_reset(self, s: ServiceState) -> None:
        self.dispatcher.wake_service(s)
        self.pauses.mark(set(self.state.service_users.get(s.id, ())))

    async def _on_started(self, outcomes: Sequence[StartOutcome]) -> None:
        started = [o for o in outcomes if o.status in ("running", "paused")]
        self.start_group.begin((o.campaign_id, o.user_id) for o in started)
        for o in started:
            await self.commands.reload_campaign(o.campaign_id)

    # -- leadership -----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.role == "leader" and not self._stopping

    @property
    def is_stopped(self) -> bool:
        return self.role == "stopped"
