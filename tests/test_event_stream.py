"""The Redis Streams publisher: contract shape, batching, draining, and life without Redis."""

from __future__ import annotations

import socket
import uuid
from datetime import datetime, timezone

import redis.asyncio as aioredis

from engine.infra.clock import FakeClock
from engine.live.event_stream import (
    STREAM,
    RedisStreamPublisher,
    last_id,
    read,
    to_wire,
)
from engine.live.events import EngineEvent
from tests.live_support import eventually, flushed

AT = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_engine_events_take_the_contract_shape() -> None:
    cid, sid, uid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    campaign = to_wire(EngineEvent(subject="campaign", kind="paused", id=cid, message="no quota",
                                   data={"reason": "NO_USER_QUOTA", "user_id": uid}), AT)
    assert campaign == {"kind": "campaign.paused", "at": AT, "user_id": uid, "campaign_id": cid,
                        "service_id": None, "message": "no quota",
                        "data": {"reason": "NO_USER_QUOTA", "user_id": uid}}
    service = to_wire(EngineEvent(subject="service", kind="service.frozen", id=sid, at=AT), AT)
    assert (service["kind"], service["service_id"], service["campaign_id"]) == ("service.frozen", sid, None)
    alert = to_wire(EngineEvent(subject="alert", kind="abnormal_freeze", id=sid, message="10 failures"), AT)
    assert (alert["kind"], alert["service_id"], alert["data"]) == ("alert", sid, {"alert": "abnormal_freeze"})
    plain = to_wire({"kind": "user.quota", "user_id": uuid.UUID(uid), "data": {"balance": 5}}, AT)
    assert plain == {"kind": "user.quota", "at": AT, "user_id": uid, "campaign_id": None, "service_id": None,
                     "message": "", "data": {"balance": 5}}


async def test_published_events_reach_the_stream_in_order(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    publisher = RedisStreamPublisher(redis, clock=FakeClock(AT), batch_size=3)
    publisher.start()
    try:
        for n in range(10):
            publisher.publish({"kind": "campaign.progress", "campaign_id": "c1", "data": {"n": n}})
        await flushed(publisher)
        entries = await read(redis, "0-0", count=100, block_ms=None)
        assert [e.decode()["data"]["n"] for e in entries] == list(range(10))
        first = entries[0]
        assert (first.kind, first.campaign_id, first.user_id) == ("campaign.progress", "c1", None)
        assert first.decode()["at"] == "2026-11-23T04:00:00Z"
        assert publisher.published == 10 and publisher.dropped == 0
        assert await last_id(redis) == entries[-1].id
        assert [e.id for e in await read(redis, entries[6].id, block_ms=None)] == [e.id for e in entries[7:]]
    finally:
        await publisher.stop()
        await redis.aclose()


async def test_stop_drains_what_is_buffered(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    publisher = RedisStreamPublisher(redis, batch_size=2)
    task = publisher.start()
    for n in range(7):
        publisher.publish({"kind": "service.quota_used", "service_id": "s", "data": {"n": n}})
    await publisher.stop(timeout=10)
    assert task.done() and publisher.buffered == 0
    assert await redis.xlen(STREAM) == 7
    await redis.aclose()


async def test_stream_length_is_bounded(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    # Approximate trimming works on whole radix-tree nodes: check the bound with room for one node.
    publisher = RedisStreamPublisher(redis, maxlen=10, batch_size=50)
    publisher.start()
    for n in range(2000):
        publisher.publish({"kind": "campaign.progress", "data": {"n": n}})
    await publisher.stop(timeout=10)
    assert 10 <= await redis.xlen(STREAM) < 2000
    await redis.aclose()


async def test_publisher_survives_redis_being_unreachable(redis_url: str) -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}", socket_connect_timeout=0.5)
    publisher = RedisStreamPublisher(dead, buffer_size=5, backoff_initial=0.01, backoff_max=0.05)
    publisher.start()
    for n in range(8):
        publisher.publish({"kind": "campaign.progress", "data": {"n": n}})
    # publish() is synchronous: nothing above could have waited for the network.
    assert publisher.buffered == 5 and publisher.dropped == 3
    await eventually(lambda: publisher.failures >= 2, "retries against the dead Redis")
    assert not publisher.connected and publisher.buffered == 5 and publisher.published == 0
    publisher.publish({"kind": "campaign.progress", "data": {"n": 8}})
    assert publisher.buffered == 5 and publisher.dropped == 4

    live = aioredis.from_url(redis_url)
    publisher.use_redis(live)
    await flushed(publisher)
    entries = await read(live, "0-0", block_ms=None)
    # The newest five survived, in order.
    assert [e.decode()["data"]["n"] for e in entries] == [4, 5, 6, 7, 8]
    assert publisher.connected and publisher.published == 5
    await publisher.stop()
    await dead.aclose()
    await live.aclose()


async def test_stop_gives_up_after_its_timeout_when_redis_is_down() -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}", socket_connect_timeout=0.2)
    publisher = RedisStreamPublisher(dead, backoff_initial=0.01, backoff_max=0.05)
    task = publisher.start()
    publisher.publish({"kind": "alert", "message": "x"})
    await publisher.stop(timeout=0.3)
    assert task.done() and publisher.buffered == 1
    await dead.aclose()


async def test_unencodable_event_is_dropped_not_raised() -> None:
    publisher = RedisStreamPublisher(aioredis.from_url("redis://127.0.0.1:1"))
    publisher.publish({"kind": "alert", "data": {"bad": object()}})
    publisher.publish({"no kind": True})
    assert publisher.dropped == 2 and publisher.buffered == 0
