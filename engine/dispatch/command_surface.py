"""The command surface the API calls (`deps.engine`, the EngineCommands protocol): each command
writes what it must, then its change reaches the hot state, applied here if this engine leads,
else handed to the leader over NOTIFY."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

import asyncpg

from engine.dispatch import campaign_control
from engine.dispatch.hot_commands import HotCommands, encode
from engine.dispatch.resets import Resetter, reset_service_now
from engine.dispatch.test_send import TestSender
from engine.domain.commands import TestSendResult
from engine.domain.errors import InvalidState, NotFound, ServiceUnavailable
from engine.infra.clock import Clock
from engine.infra.config import Settings
from engine.infra.queries import Q
from engine.live.events import EventWriter

# NOTIFY channel on which non-leading processes hand changes to the leader.
CHANNEL = "edm_engine"


class CommandSurface:
    """The Engine's commands (leader.py's `Engine` is one). The term's parts (`commands`,
    `resetter`, `tester`) are rebuilt after a step-down, so they are read at each call."""

    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    events: EventWriter
    tz: ZoneInfo
    commands: HotCommands
    resetter: Resetter
    tester: TestSender

    @property
    def is_leader(self) -> bool:
        raise NotImplementedError

    @property
    def is_stopped(self) -> bool:
        raise NotImplementedError

    async def _changed(self, kind: str, target: uuid.UUID, arg: str | None = None) -> None:
        """Apply a command to the hot state here if this engine leads, else send it to the leader."""
        if self.is_leader:
            await self.commands.apply(kind, target, arg)
        elif not self.is_stopped:
            await self.pool.execute(Q["engine.notify"], CHANNEL, encode(kind, target, arg))

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
        await campaign_control.resume(self.pool, self.events, campaign_id, by_user_id, self.clock.now(),
                                      self.settings.max_concurrent_campaigns)
        await self._changed("campaign", campaign_id)

    async def campaign_changed(self, campaign_id: uuid.UUID) -> None:
        await self._changed("campaign", campaign_id)

    async def services_changed(self, service_id: uuid.UUID) -> None:
        await self._changed("service", service_id)

    async def campaign_requeued(self, campaign_id: uuid.UUID) -> None:
        await self._changed("campaign", campaign_id)

    async def guard_frozen(self, service_id: uuid.UUID, reason: str) -> None:
        await self._changed("frozen", service_id, reason)

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
        await self._changed("unfrozen", service_id)

    async def reset_now(self, service_id: uuid.UUID, operator_id: uuid.UUID | None) -> None:
        if self.is_leader:
            if not await self.resetter.reset_now(service_id, operator_id):
                raise NotFound("service not found", field="id")
            return
        if not await reset_service_now(self.pool, service_id, self.clock.now(), operator_id=operator_id, tz=self.tz):
            raise NotFound("service not found", field="id")
        await self._changed("reset", service_id)

    async def remaining_set(self, service_id: uuid.UUID, remaining: int) -> None:
        await self._changed("remaining", service_id, str(remaining))

    async def domain_limits_changed(self) -> None:
        await self._changed("domain_limits", uuid.UUID(int=0))

    async def test_send(self, caller: uuid.UUID, is_admin: bool, service_id: uuid.UUID, to: str, *,
                        campaign_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None,
                        sender: str | None = None) -> TestSendResult:
        if not self.is_leader:
            raise ServiceUnavailable("test sends go through the leading engine; this process is a standby")
        return await self.tester.send(caller, is_admin, service_id, to, campaign_id=campaign_id,
                                      template_id=template_id, sender=sender)
