"""Revocation reaches open event streams, also while events flow without pause."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import pytest

from engine.live.event_stream import RedisStreamPublisher
from tests.conftest import Api
from tests.test_events_sse import open_stream, publisher  # noqa: F401  (fixture)

# Generous: the bound the product keeps is 2 s (push) / sse_recheck_seconds (timer); a busy
# test machine only gets slack here, the stream would otherwise never end at all.
LIMIT = 15.0


@contextlib.asynccontextmanager
async def flowing(publisher: RedisStreamPublisher, user_id: str) -> AsyncIterator[None]:
    """Events about the user every 50 ms, so no ping is ever due."""
    async def feed() -> None:
        while True:
            publisher.publish({"kind": "user.quota", "user_id": user_id, "data": {"n": 1}})
            await asyncio.sleep(0.05)

    task = asyncio.create_task(feed())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _ends(stream) -> int:
    """Read until the server ends the stream; returns how many events came meanwhile."""
    seen = 0

    async def drain() -> None:
        nonlocal seen
        while True:
            await stream.block()
            seen += 1

    with pytest.raises(EOFError):
        await asyncio.wait_for(drain(), timeout=LIMIT)
    return seen


@pytest.mark.parametrize("change", ["disable", "password", "demote"])
async def test_the_push_closes_streams_while_events_flow(admin: Api, publisher: RedisStreamPublisher, deps,
                                                         change: str) -> None:
    deps.sse_recheck_seconds = 3600  # only the push can close it in time
    role = "admin" if change == "demote" else "user"
    user, api = await admin.new_user("dora", role=role)
    async with flowing(publisher, user["id"]):
        stream = await open_stream(api)
        assert "event" in await stream.event()
        body = {"disable": {"enabled": False}, "password": {"password": "another-pass-1"},
                "demote": {"role": "user"}}[change]
        await admin.ok("PATCH", f"/users/{user['id']}", json=body)
        await _ends(stream)


async def test_a_password_change_closes_the_callers_other_streams(admin: Api, publisher: RedisStreamPublisher,
                                                                 deps) -> None:
    deps.sse_recheck_seconds = 3600
    user, api = await admin.new_user("erin")
    async with flowing(publisher, user["id"]):
        stream = await open_stream(api, f"?token={api.token}", bearer=False)
        await api.ok("POST", "/me/password", json={"old_password": "password-123", "new_password": "next-pass-12"})
        await _ends(stream)


async def test_the_timer_closes_streams_without_a_push(admin: Api, publisher: RedisStreamPublisher, deps) -> None:
    deps.sse_recheck_seconds = 0.2
    user, api = await admin.new_user("fay")
    async with flowing(publisher, user["id"]):
        stream = await open_stream(api)
        await deps.pool.execute("UPDATE users SET enabled = false WHERE username = 'fay'")  # no announcement
        await _ends(stream)
