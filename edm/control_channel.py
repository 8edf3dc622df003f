"""Changes made by other processes (the `edm quota` tool, a second API process) reach the
running engine through one Redis pub/sub channel."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson

log = logging.getLogger("edm.control")
CHANNEL = "edm:control"


async def announce(redis: Any, kind: str, **fields: str) -> None:
    """Tell a running engine something changed; harmless when none listens."""
    try:
        await redis.publish(CHANNEL, orjson.dumps({"kind": kind, **fields}))
    except Exception:  # Redis down: the engine still reconciles from the database on its own
        log.warning("control_announce_failed kind=%s", kind)


async def listen(redis: Any, engine: Any) -> None:
    """Forward announcements to the engine until cancelled; reconnect when Redis drops."""
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    await _dispatch(engine, orjson.loads(message["data"]))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("control_channel_lost; retrying in 1 s")
            await asyncio.sleep(1)


async def _dispatch(engine: Any, msg: dict[str, str]) -> None:
    match msg.get("kind"):
        case "service_changed":
            await engine.services_changed(uuid.UUID(msg["service_id"]))
        case other:
            log.warning("control_unknown_kind kind=%s", other)
