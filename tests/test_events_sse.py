"""GET /events over real HTTP: delivery, resume with Last-Event-ID, role and kind filters, pings, endings."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import AsyncIterator

import msgspec
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from api.views.events import BLOCK_MS, close_streams, stream_reader
from engine.live.event_stream import STREAM, RedisStreamPublisher
from engine.live.events import EngineEvent
from tests.conftest import Api
from tests.live_support import SseReader, add_campaign, eventually, flushed

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
async def publisher(deps, clock) -> AsyncIterator[RedisStreamPublisher]:
    p = RedisStreamPublisher(deps.redis, clock=clock)
    deps.publisher = p
    p.start()
    yield p
    await p.stop()


async def open_stream(api: Api, query: str = "", headers: dict[str, str] | None = None,
                      bearer: bool = True) -> SseReader:
    """Connect and wait for the retry hint: from then on the stream's start position is fixed."""
    h = dict(headers or {})
    if bearer and api.token:
        h["Authorization"] = f"Bearer {api.token}"
    resp = await api.client.get("/api/v1/events" + query, headers=h)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    reader = SseReader(resp)
    assert (await reader.block())["retry"] == "3000"
    return reader


async def test_admin_receives_published_events(admin: Api, publisher: RedisStreamPublisher, deps) -> None:
    publisher.publish({"kind": "campaign.started", "campaign_id": "c-1", "user_id": "u-1", "message": "go"})
    await flushed(publisher)
    stream = await open_stream(admin)  # starts after what is already in the stream
    sid = uuid.uuid4()
    publisher.publish(EngineEvent(subject="service", kind="frozen", id=str(sid), message="10 failures",
                                  data={"consecutive_failures": 10}))
    publisher.publish(EngineEvent(subject="alert", kind="abnormal_freeze", id=str(sid), message="frozen"))
    first, second = await stream.event(), await stream.event()
    assert first["event"] == "service.frozen"
    assert msgspec.json.decode(first["data"]) == {
        "kind": "service.frozen", "at": "2026-11-23T04:00:00Z", "user_id": None, "campaign_id": None,
        "service_id": str(sid), "message": "10 failures", "data": {"consecutive_failures": 10}}
    assert (second["event"], msgspec.json.decode(second["data"])["data"]) == ("alert", {"alert": "abnormal_freeze"})
    ids = [e[0].decode() for e in await deps.redis.xrange(STREAM)]
    assert [first["id"], second["id"]] == ids[1:]
    stream.response.close()


async def test_last_event_id_resumes_after_that_event(admin: Api, publisher: RedisStreamPublisher, deps) -> None:
    for n in range(5):
        publisher.publish({"kind": "campaign.progress", "campaign_id": "c", "data": {"n": n}})
    await flushed(publisher)
    ids = [e[0].decode() for e in await deps.redis.xrange(STREAM)]
    stream = await open_stream(admin, headers={"Last-Event-ID": ids[2]})
    publisher.publish({"kind": "alert", "message": "marker"})
    got = [await stream.event() for _ in range(3)]
    assert [g["id"] for g in got[:2]] == ids[3:]
    assert [msgspec.json.decode(g["data"])["data"].get("n") for g in got] == [3, 4, None]
    assert got[2]["event"] == "alert"
    stream.response.close()
    # The query parameter does the same for clients that cannot set the header.
    again = await open_stream(admin, f"?last_event_id={ids[3]}")
    assert (await again.event())["id"] == ids[4]
    again.response.close()


async def test_user_sees_only_own_campaign_and_quota_events(admin: Api, publisher: RedisStreamPublisher,
                                                            deps) -> None:
    alice, alice_api = await admin.new_user("alice")
    bob, _ = await admin.new_user("bob")
    mine = await add_campaign(deps.pool, alice["id"], "alice's", created_at=NOW)
    theirs = await add_campaign(deps.pool, bob["id"], "bob's", created_at=NOW)
    # Alice authenticates with ?token= (EventSource cannot send headers).
    stream = await open_stream(alice_api, f"?token={alice_api.token}", bearer=False)
    watcher = await open_stream(admin, "?kinds=campaign.,user.")
    publisher.publish(EngineEvent(subject="campaign", kind="progress", id=str(theirs), data={"sent": 1}))
    publisher.publish({"kind": "user.quota", "user_id": bob["id"], "data": {"balance": 1}})
    publisher.publish(EngineEvent(subject="service", kind="frozen", id=str(uuid.uuid4())))
    publisher.publish({"kind": "alert", "message": "service frozen"})
    publisher.publish({"kind": "campaign.progress", "campaign_id": str(uuid.uuid4()), "data": {}})  # unknown
    publisher.publish({"kind": "campaign.progress", "campaign_id": "not-a-uuid", "data": {}})
    publisher.publish(EngineEvent(subject="campaign", kind="started", id=str(mine)))  # owner looked up
    publisher.publish({"kind": "campaign.paused", "campaign_id": str(mine), "user_id": alice["id"]})
    publisher.publish({"kind": "user.quota", "user_id": alice["id"], "data": {"balance": 9}})
    got = [await stream.event() for _ in range(3)]
    assert [g["event"] for g in got] == ["campaign.started", "campaign.paused", "user.quota"]
    assert {msgspec.json.decode(g["data"])["campaign_id"] for g in got[:2]} == {str(mine)}
    # The admin's kind filter drops the service event and the alert, and nothing else.
    seen = [(await watcher.event())["event"] for _ in range(7)]
    assert seen == ["campaign.progress", "user.quota", "campaign.progress", "campaign.progress",
                    "campaign.started", "campaign.paused", "user.quota"]
    stream.response.close()
    watcher.response.close()


async def test_idle_stream_sends_pings(admin: Api, publisher: RedisStreamPublisher, deps) -> None:
    deps.sse_ping_seconds = 0.1
    stream = await open_stream(admin)
    block = await stream.block()
    assert block == {"comment": "ping"}
    stream.response.close()


async def test_idle_stream_outlasts_its_block_without_redis_errors(admin: Api, publisher: RedisStreamPublisher,
                                                                   deps, redis_url: str, caplog) -> None:
    # A shared client whose socket timeout is shorter than the stream's BLOCK, as redis-py's
    # default (5 s) is to BLOCK_MS: the reader must not inherit it as is.
    shared, deps.redis = deps.redis, aioredis.from_url(redis_url, socket_timeout=0.8)
    deps.sse_ping_seconds = 1.0
    try:
        with caplog.at_level(logging.WARNING, logger="edm.api.events"):
            stream = await open_stream(admin)
            blocks = [await stream.block() for _ in range(2)]  # each ping follows one idle block
            stream.response.close()
    finally:
        await deps.redis.aclose()
        deps.redis = shared
    assert blocks == [{"comment": "ping"}] * 2
    assert [r.getMessage() for r in caplog.records if r.name == "edm.api.events"] == []


async def test_stream_reader_timeout_outlasts_the_block() -> None:
    for shared, reply in [(aioredis.from_url("redis://127.0.0.1:1"), 5.0),
                          (aioredis.from_url("redis://127.0.0.1:1", socket_timeout=2), 2.0)]:
        reader = stream_reader(shared, BLOCK_MS)
        connection = reader.connection_pool.make_connection()
        assert connection.socket_timeout == BLOCK_MS / 1000 + reply
        assert reader.connection_pool.max_connections == 1
        await reader.aclose(close_connection_pool=True)
        await shared.aclose()


async def test_stream_ends_when_the_token_is_revoked(admin: Api, publisher: RedisStreamPublisher, deps) -> None:
    deps.sse_ping_seconds = 0.1
    user, user_api = await admin.new_user("dora")
    stream = await open_stream(user_api)
    await admin.ok("PATCH", f"/users/{user['id']}", json={"enabled": False})
    with pytest.raises(EOFError):
        while True:
            await stream.block()


async def test_disconnect_and_shutdown_end_streams_cleanly(admin: Api, publisher: RedisStreamPublisher, deps,
                                                           client: TestClient) -> None:
    deps.sse_ping_seconds = 0.1
    first = await open_stream(admin)
    second = await open_stream(admin)
    open_streams = deps.streams
    assert len(open_streams) == 2
    first.response.close()
    await eventually(lambda: len(open_streams) == 1, "the server noticed the client left")
    await close_streams(client.server.app)
    with pytest.raises(EOFError):
        while True:
            await second.block()
    assert not open_streams


async def test_stream_refuses_bad_requests(admin: Api, anon: Api, publisher: RedisStreamPublisher) -> None:
    await anon.err("GET", "/events", 401, "UNAUTHORIZED", field="Authorization")
    await anon.err("GET", "/events?token=garbage", 401, "UNAUTHORIZED")
    await admin.err("GET", "/events", 400, "VALIDATION_ERROR", field="Last-Event-ID",
                    headers={"Last-Event-ID": "yesterday"})
    await admin.err("GET", "/events?last_event_id=1-x", 400, "VALIDATION_ERROR", field="last_event_id")
    await admin.err("GET", "/events?colour=red", 400, "VALIDATION_ERROR", field="colour")
