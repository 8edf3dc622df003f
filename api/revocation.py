"""Revocation reaches open event streams: a Redis pub/sub push, with each stream's own timer
re-check (api.views.events) as the backstop when a message is lost or Redis is down.

Whatever ends a user's tokens (disable, password reset or change, demotion, a revoked API
token) announces the user id; every API process wakes that user's open streams, which re-check
their credentials at once and close if they no longer hold.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import AsyncIterator

from aiohttp import web
from redis.exceptions import RedisError

from api.deps import DEPS, Deps

log = logging.getLogger("edm.api.revocation")

CHANNEL = "edm:auth:revoked"
RETRY_SECONDS = 1.0


async def announce(d: Deps, user_id: uuid.UUID) -> None:
    """Tell every API process that this user's credentials changed (this one at once)."""
    forget(d, str(user_id))
    try:
        await d.redis.publish(CHANNEL, str(user_id))
    except (RedisError, OSError) as exc:
        # The streams' timer re-check still closes them, a little later.
        log.warning("revocation_push_failed error=%s", type(exc).__name__)


def forget(d: Deps, user_id: str) -> None:
    """Drop the user's cached token state, so the next request reads the row."""
    if d.auth_states is not None:
        d.auth_states.forget(uuid.UUID(user_id))


def wake(d: Deps, user_id: str) -> None:
    for stream in list(d.streams):
        if str(stream.me.id) == user_id:
            stream.recheck.set()


async def listen(d: Deps, subscribed: asyncio.Event) -> None:
    """Subscribe and wake streams until cancelled; reconnects after Redis errors."""
    while True:
        pubsub = d.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message.get("type") == "message":
                    user_id = bytes(message["data"]).decode()
                    try:
                        forget(d, user_id)
                    except ValueError:
                        log.warning("revocation_message_malformed data=%r", user_id[:64])
                        continue
                    wake(d, user_id)
        except (RedisError, OSError) as exc:
            log.warning("revocation_listener_error error=%s", type(exc).__name__)
            subscribed.set()  # waiting callers go on: the timer re-check covers the outage
            await asyncio.sleep(RETRY_SECONDS)
        finally:
            await asyncio.shield(pubsub.aclose())


async def revocation_listener(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the listener runs as long as the application does."""
    subscribed = asyncio.Event()
    task = asyncio.create_task(listen(app[DEPS], subscribed), name="revocation-listener")
    try:
        await asyncio.wait_for(subscribed.wait(), timeout=5)
    except TimeoutError:
        pass
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
