"""What every handler may use, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from api.tokens import TokenIssuer
from engine.clock import Clock
from engine.config import Settings
from engine.passwords import Passwords
from engine.secret_box import SecretBox


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
    engine: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


DEPS = web.AppKey("deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]
