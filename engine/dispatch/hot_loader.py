"""Builds and refreshes the hot state from database rows; owns the per-service adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Callable, Mapping, Protocol
from zoneinfo import ZoneInfo

import asyncpg

from engine.dispatch.hot_state import CampaignState, HotState, ServiceState
from engine.domain.send_window import window_of
from engine.domain.errors import ConfigError
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.infra.secret_box import SecretBox
from engine.providers.base import Provider
from engine.templating.shared import CampaignTemplates, SharedCompiler

log = logging.getLogger("edm.engine.hot_loader")

# What a reload of a services row refreshes in the hot state: the configuration an administrator
# owns. The live fields (failure streak, throttle, freeze, counters, last request) belong to the
# running engine and change only through its own work or an explicit command (hot_commands.py).
CONFIG_FIELDS = ("name", "provider_kind", "domain", "daily_quota", "reset_time", "send_interval", "enabled",
                 "freeze_after", "request_timeout")


class ProviderBuilder(Protocol):
    def build(self, kind: str, credentials: Mapping[str, Any], base_url: str | None = None) -> Provider: ...


class HotLoader:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, tz: ZoneInfo, state: HotState, providers: ProviderBuilder,
                 box: SecretBox):
        self.pool = pool
        self.clock = clock
        self.tz = tz
        self.state = state
        self.providers = providers
        self.box = box
        self._provider_keys: dict[uuid.UUID, tuple[str, str, str | None]] = {}
        self.compiler = SharedCompiler()
        # Told of every campaign put (the engine's send-window keeper re-reads its window).
        self.on_campaign: Callable[[CampaignState], None] | None = None

    async def load_all(self) -> None:
        """Every service, every mapping, every running or paused campaign."""
        for row in await self.pool.fetch(Q["engine.load_services"], None):
            self.put_service(row)
        by_user: dict[uuid.UUID, set[uuid.UUID]] = {}
        for row in await self.pool.fetch(Q["engine.load_mappings"], None):
            by_user.setdefault(row["user_id"], set()).add(row["service_id"])
        for uid, sids in by_user.items():
            self.state.set_mapping(uid, sids)
        for row in await self.pool.fetch(Q["engine.load_active_campaigns"], None):
            await self.put_campaign(row)

    def put_service(self, row: Mapping[str, Any]) -> ServiceState:
        """Add a service or refresh it in place (in-flight sends hold the same object)."""
        fresh = ServiceState.from_row(row, self.tz, self.clock.now())
        s = self.state.services.get(fresh.id)
        if s is None:
            s = self.state.services[fresh.id] = fresh
        else:
            old_quota = s.daily_quota
            for name in CONFIG_FIELDS:
                setattr(s, name, getattr(fresh, name))
            # A new daily quota moves today's remaining by the difference, as the update statement
            # did in the row: applied to memory's count, which may be ahead of the row's.
            s.remaining_today = max(0, s.remaining_today + s.daily_quota - old_quota)
            if fresh.quota_day_start > s.quota_day_start:
                s.quota_day_start = fresh.quota_day_start  # a new reset time may move it forward
            s.reschedule(self.tz, self.clock.now())
            s.awaiting_reset = False
        key = (row["provider"], row["credentials"], row["base_url"])
        if self._provider_keys.get(s.id) != key:
            old = s.provider
            try:
                s.provider = self.providers.build(row["provider"], self.box.open(row["credentials"]), row["base_url"])
                self._provider_keys[s.id] = key
            except ConfigError as exc:
                # Unusable until fixed: its users see NO_AVAILABLE_SERVICE rather than failed sends.
                log.error("service_provider_unusable service=%s error=%s", s.name, exc.message)
                s.provider, s.enabled = None, False
            if old is not None:
                asyncio.ensure_future(old.close())
        return s

    async def drop_service(self, service_id: uuid.UUID) -> None:
        s = self.state.services.pop(service_id, None)
        self._provider_keys.pop(service_id, None)
        if s is not None and s.provider is not None:
            await s.provider.close()

    async def put_campaign(self, row: Mapping[str, Any]) -> CampaignState:
        """Add a campaign (its templates compiled on first use) or refresh its status in place."""
        c = self.state.campaigns.get(row["id"])
        if c is None:
            c = CampaignState(row["id"], row["user_id"], row["status"], row["pause_reason"], row["sender_name"],
                              row["total"], row["reserved"], row["created_at"], name=row["name"],
                              released=row["released"])
            # Compiled on first send (a template that does not compile fails its recipients one by
            # one with TEMPLATE_ERROR; the engine keeps going).
            rows = await self.pool.fetch(Q["engine.campaign_templates"], c.id)
            c.templates = CampaignTemplates(c.id, self.compiler, {
                t["id"]: (t["subject"], t["html_body"], t["text_body"]) for t in rows})
            self.state.add_campaign(c)
        else:
            c.status, c.pause_reason, c.total, c.reserved = (row["status"], row["pause_reason"], row["total"],
                                                             row["reserved"])
            c.released = row["released"]
        c.window = window_of(row.get("send_window"), self.tz)
        if self.on_campaign is not None:
            self.on_campaign(c)
        return c

    async def close(self) -> None:
        for s in self.state.services.values():
            if s.provider is not None:
                with contextlib.suppress(Exception):
                    await s.provider.close()
