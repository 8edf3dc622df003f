"""Admin changes applied to the leader's hot state. The leader owns the hot state: a change
arrives as a command (`kind:id[:argument]`, in-process or by NOTIFY from another process), and
each command touches only the fields it is about. Fields the engine owns while it runs (failure
streak, throttle, abnormal freeze, used and remaining today, last request) are never copied back
from a database row, which may be older than memory (a write still in the settle buffer)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import asyncpg

from engine.dispatch.claims import Claimer
from engine.dispatch.dispatcher import Dispatcher
from engine.dispatch.due import DueStarter
from engine.dispatch.hot_loader import HotLoader
from engine.dispatch.hot_state import HotState, ServiceState
from engine.dispatch.pause_keeper import PauseKeeper
from engine.dispatch.recovery import load_domain_limits
from engine.dispatch.resets import Resetter
from engine.infra.clock import Clock
from engine.infra.queries import Q

log = logging.getLogger("edm.engine.commands")


def encode(kind: str, target: uuid.UUID, arg: str | None = None) -> str:
    return f"{kind}:{target}" if arg is None else f"{kind}:{target}:{arg}"


def decode(payload: str) -> tuple[str, uuid.UUID, str | None]:
    """Raises ValueError for a malformed payload."""
    kind, _, rest = payload.partition(":")
    raw_id, sep, arg = rest.partition(":")
    return kind, uuid.UUID(raw_id), arg if sep else None


@dataclass
class HotCommands:
    pool: asyncpg.Pool
    state: HotState
    loader: HotLoader
    dispatcher: Dispatcher
    pauses: PauseKeeper
    resetter: Resetter
    claimer: Claimer
    due: DueStarter
    clock: Clock
    # EDM_SEND_RATE_LIMIT: the cap when no administrator has set one.
    send_rate_limit: int = 0

    async def apply(self, kind: str, target: uuid.UUID, arg: str | None = None) -> None:
        match kind:
            case "campaign":
                await self.reload_campaign(target)
            case "saved":
                self.due.wake()
            case "service":
                await self.reload_service(target)
            case "unfrozen":
                self._service_changed(target, _unfrozen)
            case "frozen":  # feedback: the reputation guard froze it (already written)
                self._service_changed(target, lambda s: _frozen(s, arg or "frozen"))
            case "remaining":
                self._service_changed(target, lambda s: setattr(s, "remaining_today", int(arg or 0)))
            case "reset":
                if target in self.state.services:
                    async with self.dispatcher.write_lock:  # the reset's counters, read after its write
                        await self.resetter.refresh([target])
            case "mapping":
                await self.reload_mapping(target)
            case "quota":
                await self.reload_quota(target)
            case "domain_limits":
                await self.reload_domain_limits()
            case _:
                log.error("engine_command_unknown kind=%s", kind)

    def _service_changed(self, service_id: uuid.UUID, change) -> None:  # type: ignore[no-untyped-def]
        s = self.state.services.get(service_id)
        if s is None:
            return
        change(s)
        if s.dispatchable:
            self.dispatcher.schedule(s)
        self.pauses.mark(set(self.state.service_users.get(service_id, ())))
        self.dispatcher.settler.count_frozen()

    async def reload_campaign(self, campaign_id: uuid.UUID) -> None:
        row = await self.pool.fetchrow(Q["engine.load_active_campaigns"], campaign_id)
        if row is None:
            self.state.drop_campaign(campaign_id)
            return
        c = await self.loader.put_campaign(row)
        self.claimer.want(c)
        self.pauses.mark({c.user_id})
        if c.runnable:
            self.dispatcher.wake_user(c.user_id)

    async def reload_service(self, service_id: uuid.UUID) -> None:
        """A configuration change (enable, quota, interval, reset time, credentials)."""
        async with self.dispatcher.write_lock:
            row = await self.pool.fetchrow(Q["engine.load_services"], service_id)
            users = set(self.state.service_users.get(service_id, ()))
            before = self.state.services.get(service_id)
            was_enabled = before.enabled if before is not None else None
            s = self.loader.put_service(row) if row is not None else None
        if s is not None and was_enabled is not None and s.enabled != was_enabled:
            # The leader owns the hot state, so it announces the flip once, whoever asked for it.
            self.dispatcher.events.service(service_id, "enabled" if s.enabled else "disabled",
                                           "enabled" if s.enabled else "disabled: nothing is sent through it",
                                           self.dispatcher.clock.now())
        if row is None:
            await self.loader.drop_service(service_id)
            self.dispatcher.fair.forget_service(service_id)
        elif s is not None and s.dispatchable:
            self.dispatcher.schedule(s)  # the interval may have changed: re-arm
        elif s is not None:
            self.dispatcher.wake_service(s)  # not dispatchable: known as idle for when it is
        self.resetter.wake()
        self.pauses.mark(users)
        self.dispatcher.settler.count_frozen()

    async def reload_mapping(self, user_id: uuid.UUID) -> None:
        rows = await self.pool.fetch(Q["engine.load_mappings"], user_id)
        self.state.set_mapping(user_id, {r["service_id"] for r in rows})
        self.pauses.mark({user_id})
        self.dispatcher.wake_user(user_id)

    async def reload_domain_limits(self) -> None:
        """Domain groups or the per-minute cap changed: reload them with their counts, and offer every
        parked subtask again (its group may be gone or have more room)."""
        d = self.dispatcher
        async with d.write_lock:
            await load_domain_limits(self.pool, d.gate, self.send_rate_limit, self.clock.now())
            d.gate.unpark(self.state.campaigns.values())
        for uid in list(self.state.users):
            d.wake_user(uid)
        d.wake()

    async def reload_quota(self, user_id: uuid.UUID) -> None:
        u = self.state.users.get(user_id)
        for cid in list(u.campaigns) if u is not None else []:
            await self.reload_campaign(cid)


def _unfrozen(s: ServiceState) -> None:
    s.abnormal_frozen, s.abnormal_reason, s.consecutive_failures = False, None, 0
    s.written_live = (0, s.throttled_until)  # the unfreeze statement wrote the zero


def _frozen(s: ServiceState, reason: str) -> None:
    s.abnormal_frozen, s.abnormal_reason = True, reason
