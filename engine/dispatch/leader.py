"""The engine: leader election, start-up recovery, the named background tasks under a
supervisor, and the command surface the API calls (`deps.engine`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from engine.dispatch import campaign_control
from engine.dispatch.claims import Claimer
from engine.dispatch.dispatcher import Dispatcher
from engine.dispatch.due import DueStarter
from engine.dispatch.fanout import StartOutcome
from engine.dispatch.hot_loader import HotLoader, ProviderBuilder
from engine.dispatch.hot_state import CampaignState, HotState, ServiceState
from engine.dispatch.pause_keeper import PauseKeeper
from engine.dispatch.recovery import RecoveryReport, recover
from engine.dispatch.resets import Resetter
from engine.domain.errors import EdmError, InvalidState, NotFound
from engine.infra.clock import Clock
from engine.infra.config import Settings
from engine.infra.queries import Q
from engine.infra.secret_box import SecretBox
from engine.live.events import EventSink, EventWriter
from engine.live.metrics import EngineMetrics

log = logging.getLogger("edm.engine")

# Any constant works; every process of this product must use the same one.
LEADER_LOCK = 7_201_002
# NOTIFY channel on which non-leading processes hand changes to the leader.
CHANNEL = "edm_engine"


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
    stop_timeout: float = 10.0
    freeze_after: int = 10
    leader_lock: int = LEADER_LOCK


class EngineStopped(EdmError):
    code = "ENGINE_STOPPED"


Role = Literal["idle", "standby", "leader", "stopped"]


class Engine:
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
        self.role: Role = "idle"
        self.error: BaseException | None = None
        self.recovery: RecoveryReport | None = None
        self.leader = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock_conn: Any = None
        self._stopping = False
        self._lock_lost = asyncio.Event()
        self._notices: asyncio.Queue[str] = asyncio.Queue()
        self._build_parts()

    def _build_parts(self) -> None:
        o = self.options
        self.state = HotState()
        self.loader = HotLoader(self.pool, self.clock, self.tz, self.state, self.providers, self.box)
        # The engine's writes go one at a time (see Dispatcher.write_lock).
        lock = asyncio.Lock()
        self.claimer = Claimer(self.pool, self.state, self._on_filled, batch=o.claim_batch)
        self.pauses = PauseKeeper(self.pool, self.clock, self.state, self.events, self._on_running, lock)
        self.dispatcher = Dispatcher(self.pool, self.clock, self.state, self.claimer, self.events, lock,
                                     mark_dirty=self.pauses.mark, reset_due=lambda: self.resetter.wake(),
                                     settle_batch=o.settle_batch, settle_delay=o.settle_delay,
                                     freeze_after=o.freeze_after, metrics=self.metrics)
        self.resetter = Resetter(self.pool, self.clock, self.tz, self.state, self.events, lock, self._on_reset)
        self.due = DueStarter(self.pool, self.clock, self.events, self._on_started,
                              poll_seconds=o.due_poll_seconds)

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
        conn = self._lock_conn = await self.pool.acquire()
        if not await conn.fetchval(Q["engine.leader_lock"], self.options.leader_lock):
            self.role = "standby"
            log.info("engine_standby waiting for the active engine to go away")
            await conn.execute(Q["engine.leader_wait"], self.options.leader_lock)
        self.role = "leader"
        log.info("engine_leader")
        # The lock lives as long as this connection: losing it means another engine may lead.
        conn.add_termination_listener(self._on_lock_lost)
        await conn.add_listener(CHANNEL, self._on_notify)
        self.recovery = await recover(self.pool, self.events, self.clock.now())
        await self._load()
        self.leader.set()
        self._tasks = {name: asyncio.create_task(coro, name=f"engine.{name}") for name, coro in (
            ("dispatcher", self.dispatcher.run()), ("claimer", self.claimer.run()),
            ("settle", self.dispatcher.settle.run()), ("pauses", self.pauses.run()),
            ("resets", self.resetter.run()), ("due", self.due.run()),
            ("leader_lock", self._watch_lock()), ("commands", self._apply_notices()),
        )}
        await self._supervise()

    def _on_lock_lost(self, conn: object) -> None:
        self._lock_lost.set()

    async def _watch_lock(self) -> None:
        await self._lock_lost.wait()
        raise EngineStopped("the leader lock connection was lost")

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._notices.put_nowait(payload)

    async def _apply_notices(self) -> None:
        """Changes made through another process's API (a standby's), applied to the hot state."""
        while True:
            payload = await self._notices.get()
            try:
                kind, _, raw_id = payload.partition(":")
                await self._apply_change(kind, uuid.UUID(raw_id))
            except ValueError:
                log.error("engine_notice_malformed payload=%r", payload)

    async def _changed(self, kind: str, target: uuid.UUID) -> None:
        """Apply a change to the hot state here if this engine leads, else tell the leader."""
        if self.is_leader:
            await self._apply_change(kind, target)
        elif self.role != "stopped":
            await self.pool.execute(Q["engine.notify"], CHANNEL, f"{kind}:{target}")

    async def _apply_change(self, kind: str, target: uuid.UUID) -> None:
        match kind:
            case "campaign":
                await self._reload_campaign(target)
            case "saved":
                self.due.wake()
            case "service":
                await self._reload_service(target)
            case "mapping":
                await self._reload_mapping(target)
            case "quota":
                await self._reload_quota(target)
            case _:
                log.error("engine_notice_unknown kind=%s", kind)

    async def _supervise(self) -> None:
        done, _ = await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        if self._stopping:
            return  # tasks end because stop() ends them
        task = next(iter(done))
        exc = task.exception() if not task.cancelled() else None
        self.error = exc or RuntimeError(f"{task.get_name()} ended")
        log.critical("engine_task_died task=%s error=%r: the engine stops", task.get_name(), self.error)
        await self._shutdown(orderly=False)
        raise EngineStopped(f"engine task {task.get_name()} died: {self.error!r}") from exc

    async def stop(self) -> None:
        """Stop cleanly: no new sends, in-flight sends finish and settle, the lock is released."""
        if self._stopping:
            return
        if self.role != "leader" and self._main is not None:
            self._main.cancel()  # a standby (or a starting engine) only has its lock wait to end
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._main
        await self._shutdown(orderly=True)
        if self._main is not None:
            if not self._main.done():
                self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._main

    async def _shutdown(self, orderly: bool) -> None:
        self._stopping = True
        dispatcher = self._tasks.get("dispatcher")
        if orderly and dispatcher is not None and not dispatcher.done():
            # Not cancelled: a bind statement is never cut off from the sends it promises.
            self.dispatcher.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(dispatcher), self.options.stop_timeout)
        for name in ("due", "dispatcher", "claimer", "pauses", "resets", "leader_lock", "commands"):
            t = self._tasks.get(name)
            if t is not None and not t.done():
                t.cancel()
        if orderly:
            await self.dispatcher.drain(self.options.stop_timeout)
            settle = self._tasks.get("settle")
            self.dispatcher.settle.stop()
            if settle is not None and not settle.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(settle), self.options.stop_timeout)
        else:
            self.dispatcher.abandon()
        for t in self._tasks.values():
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.loader.close()
        await self._release_lock()
        self.role = "stopped"

    async def _release_lock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            # A dead connection may already be back in the pool: nothing to remove then.
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(self._on_lock_lost)
                await conn.remove_listener(CHANNEL, self._on_notify)
            with contextlib.suppress(Exception):
                await self.pool.release(conn)  # the pool's reset unlocks advisory locks

    async def abort(self) -> None:
        """Crash simulation for tests: drop everything without writing; the lock dies with its connection."""
        self._stopping = True
        self.dispatcher.abandon()
        for t in self._tasks.values():
            t.cancel()
        if self._main is not None:
            self._main.cancel()
        await asyncio.gather(*self._tasks.values(), *( [self._main] if self._main else []), return_exceptions=True)
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            conn.terminate()
            with contextlib.suppress(Exception):
                await self.pool.release(conn)
        self.role = "stopped"

    # -- hot state ------------------------------------------------------------------------------

    async def _load(self) -> None:
        await self.loader.load_all()
        for c in self.state.campaigns.values():
            self.claimer.want(c)
        for sv in self.state.services.values():
            self.dispatcher.wake_service(sv)
        self.pauses.mark({c.user_id for c in self.state.campaigns.values()})
        self.dispatcher.count_frozen()
        log.info("engine_loaded services=%d users=%d campaigns=%d", len(self.state.services),
                 len(self.state.users), len(self.state.campaigns))

    async def _reload_campaign(self, campaign_id: uuid.UUID) -> None:
        row = await self.pool.fetchrow(Q["engine.load_active_campaigns"], campaign_id)
        if row is None:
            self.state.drop_campaign(campaign_id)
            return
        c = await self.loader.put_campaign(row)
        self.claimer.want(c)
        self.pauses.mark({c.user_id})
        if c.runnable:
            self.dispatcher.wake_user(c.user_id)

    # -- callbacks from the parts ---------------------------------------------------------------

    async def _on_filled(self, c: CampaignState) -> None:
        if c.buffer:
            self.dispatcher.wake_user(c.user_id)
        elif not c.has_pending and c.in_flight == 0:
            await self.dispatcher.maybe_complete({c.id})

    def _on_running(self, user_id: uuid.UUID) -> None:
        self.dispatcher.wake_user(user_id)

    def _on_reset(self, s: ServiceState) -> None:
        self.dispatcher.wake_service(s)
        self.pauses.mark(set(self.state.service_users.get(s.id, ())))

    async def _on_started(self, outcome: StartOutcome) -> None:
        if outcome.status in ("running", "paused"):
            await self._reload_campaign(outcome.campaign_id)

    # -- commands (the API's `deps.engine`) -----------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.role == "leader" and not self._stopping

    async def campaign_saved(self, campaign_id: uuid.UUID) -> None:
        await self._changed("saved", campaign_id)

    async def cancel_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None) -> int:
        n = await campaign_control.cancel(self.pool, self.events, campaign_id, by_user_id, self.clock.now())
        await self._changed("campaign", campaign_id)
        return n

    async def pause_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None) -> None:
        await campaign_control.pause(self.pool, self.events, campaign_id, by_user_id, self.clock.now())
        await self._changed("campaign", campaign_id)

    async def resume_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None) -> None:
        await campaign_control.resume(self.pool, self.events, campaign_id, by_user_id, self.clock.now())
        await self._changed("campaign", campaign_id)

    async def services_changed(self, service_id: uuid.UUID) -> None:
        await self._changed("service", service_id)

    async def mapping_changed(self, user_id: uuid.UUID) -> None:
        await self._changed("mapping", user_id)

    async def quota_changed(self, user_id: uuid.UUID) -> None:
        await campaign_control.charge_shortfalls(self.pool, self.events, user_id, self.clock.now())
        await self._changed("quota", user_id)

    async def unfreeze(self, service_id: uuid.UUID, operator_id: uuid.UUID | None) -> None:
        now = self.clock.now()
        if await self.pool.fetchval(Q["engine.unfreeze"], service_id, operator_id, now) is None:
            if await self.pool.fetchval(Q["engine.service_exists"], service_id) is None:
                raise NotFound("service not found", field="id")
            raise InvalidState("the service is not frozen", field="id")
        self.events.service(service_id, "unfrozen", "unfrozen by an administrator", now)
        await self._changed("service", service_id)

    async def reset_now(self, service_id: uuid.UUID, operator_id: uuid.UUID | None) -> None:
        if not await self.resetter.reset_now(service_id, operator_id):
            raise NotFound("service not found", field="id")
        await self._changed("service", service_id)

    # -- reloads of the hot state -----------------------------------------------------------------

    async def _reload_service(self, service_id: uuid.UUID) -> None:
        async with self.dispatcher.write_lock:  # the counters read must include every bind made
            row = await self.pool.fetchrow(Q["engine.load_services"], service_id)
            users = set(self.state.service_users.get(service_id, ()))
            s = self.loader.put_service(row) if row is not None else None
        if row is None:
            await self.loader.drop_service(service_id)
            self.dispatcher.fair.forget_service(service_id)
        elif s is not None and s.dispatchable:
            self.dispatcher.schedule(s)  # the interval may have changed: re-arm
        self.resetter.wake()
        self.pauses.mark(users)
        self.dispatcher.count_frozen()

    async def _reload_mapping(self, user_id: uuid.UUID) -> None:
        rows = await self.pool.fetch(Q["engine.load_mappings"], user_id)
        self.state.set_mapping(user_id, {r["service_id"] for r in rows})
        self.pauses.mark({user_id})
        self.dispatcher.wake_user(user_id)

    async def _reload_quota(self, user_id: uuid.UUID) -> None:
        u = self.state.users.get(user_id)
        for cid in list(u.campaigns) if u is not None else []:
            await self._reload_campaign(cid)
