"""What every handler may use, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from api.auth_cache import AuthCache
from api.tokens import TokenIssuer
from engine.domain.commands import EngineCommands
from engine.infra.clock import Clock
from engine.infra.config import Settings
from engine.infra.passwords import Passwords
from engine.infra.secret_box import SecretBox
from engine.live.event_stream import RedisStreamPublisher
from engine.live.metrics import EngineMetrics
from engine.live.overview import OverviewCache


@dataclass
class Deps:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    clock: Clock
    passwords: Passwords
    box: SecretBox
    tokens: TokenIssuer
    # The running engine's command surface (campaign pause/resume/cancel, service actions);
    # None when the API runs without an engine.
    engine: EngineCommands | None = None
    publisher: RedisStreamPublisher | None = None
    metrics: EngineMetrics | None = None
    # Seconds between keep-alive pings of an idle event stream (tests shorten it).
    sse_ping_seconds: float = 15.0
    # Seconds between an open event stream's re-checks of its caller's credentials: the backstop
    # of the revocation push (api.revocation), so a revoked stream closes within this even
    # without Redis.
    sse_recheck_seconds: float = 1.0
    # Open event streams, ended on shutdown (api.views.events).
    streams: set[Any] = field(default_factory=set)
    # Overview snapshots shared between clients (ttl from settings.overview_cache_seconds).
    overviews: OverviewCache | None = None
    # Users' token state between requests (ttl from settings.auth_cache_seconds; api.auth_cache).
    auth_states: AuthCache | None = None

    def __post_init__(self) -> None:
        if self.overviews is None:
            self.overviews = OverviewCache(self.settings.overview_cache_seconds)
        if self.auth_states is None:
            self.auth_states = AuthCache(self.settings.auth_cache_seconds)


DEPS = web.AppKey("deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]
