"""Live events on a Redis Stream: a publisher that never blocks dispatch, and a reader helper.

`RedisStreamPublisher.publish()` only appends to a bounded in-memory buffer; its own task
(`run()`) ships batches with one pipelined round trip. When Redis is down the buffer keeps the
newest events (older ones are counted as dropped) and the task retries with backoff, so
sending goes on and the stream resumes when Redis is back.

Stream entries carry four fields: `k` (kind), `u` (user id or empty), `c` (campaign id or
empty) and `d` (the event as JSON, in the shape of the live contract), so readers can filter
without decoding the JSON.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from datetime import datetime
from itertools import islice
from typing import Any, Mapping

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from engine.infra.clock import Clock, SystemClock
from engine.live.events import EngineEvent

log = logging.getLogger("edm.engine.event_stream")

STREAM = "edm:events"
_encoder = msgspec.json.Encoder()


class StreamEvent(msgspec.Struct, frozen=True):
    """One stream entry as readers see it; `payload` is the event's JSON, ready to forward."""

    id: str
    kind: str
    user_id: str | None
    campaign_id: str | None
    payload: bytes

    def decode(self) -> dict[str, Any]:
        return msgspec.json.decode(self.payload)


def to_wire(event: EngineEvent | Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The contract shape {kind, at, user_id, campaign_id, service_id, message, data}."""
    if isinstance(event, EngineEvent):
        data = dict(event.data)
        kind = event.kind if "." in event.kind else f"{event.subject}.{event.kind}"
        if event.subject == "alert":
            # The contract has one `alert` kind; what the alert is about travels in data.
            kind, data = "alert", {**data, "alert": event.kind}
        return {
            "kind": kind,
            "at": event.at or now,
            "user_id": _str(data.get("user_id")),
            "campaign_id": event.id if event.subject == "campaign" else _str(data.get("campaign_id")),
            "service_id": event.id if event.subject in ("service", "alert") else _str(data.get("service_id")),
            "message": event.message,
            "data": data,
        }
    return {
        "kind": str(event["kind"]),
        "at": event.get("at") or now,
        "user_id": _str(event.get("user_id")),
        "campaign_id": _str(event.get("campaign_id")),
        "service_id": _str(event.get("service_id")),
        "message": str(event.get("message", "")),
        "data": dict(event.get("data") or {}),
    }


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _fields(wire: dict[str, Any]) -> dict[str, bytes | str]:
    return {"k": wire["kind"], "u": wire["user_id"] or "", "c": wire["campaign_id"] or "",
            "d": _encoder.encode(wire)}


class RedisStreamPublisher:
    """Buffers events in memory and XADDs them in batches from its own task."""

    def __init__(self, redis: aioredis.Redis, *, clock: Clock | None = None, stream: str = STREAM,
                 maxlen: int = 100_000, buffer_size: int = 10_000, batch_size: int = 500,
                 attempt_timeout: float = 5.0, backoff_initial: float = 0.1, backoff_max: float = 5.0):
        self.redis = redis
        self.clock = clock or SystemClock()
        self.stream = stream
        self.maxlen = maxlen
        self.batch_size = batch_size
        self.attempt_timeout = attempt_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # (sequence number, stream fields): the sequence tells, after an await, which of the
        # shipped events are still in the buffer (the oldest may have been evicted meanwhile).
        self._buffer: deque[tuple[int, dict[str, bytes | str]]] = deque(maxlen=buffer_size)
        self._seq = 0
        self._wake = asyncio.Event()  # new events buffered
        self._interrupt = asyncio.Event()  # stop() or a new Redis: cut a backoff short
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.dropped = 0
        self.failures = 0
        self.connected = True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def publish(self, event: EngineEvent | Mapping[str, Any]) -> None:
        """Take the event without waiting; never raises (a bad event is logged and dropped)."""
        try:
            fields = _fields(to_wire(event, self.clock.now()))
        except Exception:
            self.dropped += 1
            log.exception("event_unencodable kind=%s", getattr(event, "kind", None))
            return
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1  # the deque evicts the oldest one on append
        self._seq += 1
        self._buffer.append((self._seq, fields))
        self._wake.set()

    def use_redis(self, redis: aioredis.Redis) -> None:
        """Point the publisher at another Redis; a pending retry happens at once."""
        self.redis = redis
        self._interrupt.set()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="event-stream-publisher")
        return self._task

    async def run(self) -> None:
        """Ship the buffer until `stop()` has been called and the buffer is empty."""
        self._task = self._task or asyncio.current_task()
        delay = self.backoff_initial
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            # Cleared before the attempt, so a new Redis configured during it is not missed.
            self._interrupt.clear()
            if await self._ship():
                delay = self.backoff_initial
                continue
            # Wait out the backoff (new events do not shorten it: they would hammer a dead Redis),
            # but wake early for stop() or a new Redis.
            try:
                await asyncio.wait_for(self._interrupt.wait(), timeout=delay * random.uniform(0.8, 1.2))
                delay = self.backoff_initial
            except TimeoutError:
                delay = min(self.backoff_max, delay * 2)

    async def _ship(self) -> bool:
        batch = list(islice(self._buffer, self.batch_size))
        pipe = self.redis.pipeline(transaction=False)
        for _, fields in batch:
            pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(pipe.execute(), timeout=self.attempt_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            if self.connected:
                log.warning("event_stream_unavailable error=%s buffered=%d", type(exc).__name__, len(self._buffer))
            self.connected = False
            return False
        last = batch[-1][0]
        while self._buffer and self._buffer[0][0] <= last:
            self._buffer.popleft()
        self.published += len(batch)
        if not self.connected:
            log.info("event_stream_resumed dropped=%d", self.dropped)
        self.connected = True
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Ship what is buffered (up to `timeout` seconds), then end the task."""
        self._closing = True
        self._wake.set()
        self._interrupt.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.warning("event_stream_stopped_with_loss lost=%d", len(self._buffer))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, raw: Mapping[Any, Any]) -> StreamEvent:
    f = {_text(k): v for k, v in raw.items()}
    payload = f.get("d", b"{}")
    return StreamEvent(_text(entry_id), _text(f.get("k", b"")), _text(f.get("u", b"")) or None,
                       _text(f.get("c", b"")) or None, payload if isinstance(payload, bytes) else _text(payload).encode())


async def last_id(redis: aioredis.Redis, stream: str = STREAM) -> str:
    """The id of the newest entry ("0-0" for an empty stream): where a new reader starts."""
    newest: Any = await redis.xrevrange(stream, count=1)
    return _text(newest[0][0]) if newest else "0-0"


async def read(redis: aioredis.Redis, last_id: str, count: int = 200, block_ms: int | None = 5000,
               stream: str = STREAM) -> list[StreamEvent]:
    """Entries after `last_id`, waiting up to `block_ms` for one (None = do not wait)."""
    reply: Any = await redis.xread({stream: last_id}, count=count, block=block_ms)
    # RESP2 answers [[stream, entries]], RESP3 {stream: [entries]}.
    if isinstance(reply, dict):
        per_stream = [v[0] if v and isinstance(v[0], list) else v for v in reply.values()]
    else:
        per_stream = [entries for _, entries in reply or []]
    return [_entry(entry_id, raw) for entries in per_stream for entry_id, raw in entries]
