"""GET /events: the live event stream as Server-Sent Events, read from the Redis stream.

Each client gets its own Redis connection for its blocking XREAD, so a slow or idle stream
never holds a connection the rest of the API needs. Users see only events about themselves
(their campaigns, their quota); administrators see everything.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Annotated

import msgspec
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from api.auth import authenticate, authenticate_token
from api.deps import DEPS, Deps
from api.envelope import REQUEST_ID
from api.routing import Call, Routes
from api.routing_types import CurrentUser
from engine.domain.errors import (
    EdmError,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from engine.live.event_stream import StreamEvent, last_id, read
from engine.live.overview import campaign_owners

routes = Routes()

log = logging.getLogger("edm.api.events")

STREAM_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"
_STREAM_ID = re.compile(STREAM_ID)
BLOCK_MS = 5000  # longest XREAD wait: also how soon a vanished client is noticed
# What a stream reader allows Redis for a reply on top of the BLOCK, unless the shared client
# sets its own socket_timeout.
REPLY_SECONDS = 5.0
BATCH = 200
OWNER_CACHE = 10_000


class EventsQuery(msgspec.Struct, forbid_unknown_fields=True):
    # The bearer token, for clients that cannot set headers (EventSource).
    token: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    # Resume after this stream id (the Last-Event-ID header wins when both are given).
    last_event_id: Annotated[str, msgspec.Meta(pattern=STREAM_ID)] | None = None
    # Comma-separated kind prefixes, e.g. `campaign.,service.frozen`.
    kinds: Annotated[str, msgspec.Meta(max_length=500)] | None = None


async def _caller(call: Call) -> tuple[CurrentUser, str | None]:
    """Bearer header first, else `?token=`; returns the token too, to re-check it on pings."""
    if call.request.headers.get("Authorization"):
        return await authenticate(call.request, call.deps), None
    if call.query.token:
        return await authenticate_token(call.query.token, call.deps, field="token"), call.query.token
    raise Unauthorized("missing bearer token", field="Authorization")


@routes.route("GET", "/events", summary="Live events (Server-Sent Events; Bearer header or ?token=)",
              access="public", query=EventsQuery, tag="monitor", produces="text/event-stream")
async def events(call: Call) -> web.StreamResponse:
    me, token = await _caller(call)
    d, request = call.deps, call.request
    start = request.headers.get("Last-Event-ID", "").strip() or call.query.last_event_id
    if start and not _STREAM_ID.match(start):
        raise ValidationError("Last-Event-ID must be a stream id like 1700000000000-0", field="Last-Event-ID")
    prefixes = tuple(p.strip() for p in (call.query.kinds or "").split(",") if p.strip())
    ping_seconds = d.sse_ping_seconds
    block_ms = int(min(BLOCK_MS, ping_seconds * 1000))
    reader = stream_reader(d.redis, block_ms)
    try:
        try:
            cursor = start or await last_id(reader)
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("the event stream is unavailable") from exc
        stream = _Stream(request, d, reader, me, token, cursor, prefixes, ping_seconds, block_ms)
        return await stream.serve()
    finally:
        await reader.aclose(close_connection_pool=True)


def stream_reader(shared: aioredis.Redis, block_ms: int) -> aioredis.Redis:
    """A one-connection client for one stream's blocking XREADs, set up like the shared client.

    Its own connection, outside the shared pool: a blocking XREAD occupies it for up to
    `block_ms`, and a read cut short by a vanished client must never hand it to anyone else.
    Its socket timeout must outlast the BLOCK: copied as is (redis-py's default is 5 s, equal to
    BLOCK_MS), every idle XREAD timed out just before Redis answered it with "nothing new".
    """
    pool = shared.connection_pool
    kwargs = dict(pool.connection_kwargs)
    reply = kwargs.get("socket_timeout") or REPLY_SECONDS
    kwargs["socket_timeout"] = block_ms / 1000 + reply
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **kwargs))


class _Stream:
    """One client's stream: XREAD, filter, write, ping, until the client or the server leaves."""

    def __init__(self, request: web.Request, d: Deps, reader: aioredis.Redis, me: CurrentUser, token: str | None,
                 cursor: str, prefixes: tuple[str, ...], ping_seconds: float, block_ms: int):
        self.request, self.d, self.reader, self.me, self.token = request, d, reader, me, token
        self.cursor, self.prefixes = cursor, prefixes
        self.ping_seconds, self.block_ms = ping_seconds, block_ms
        self.owners: dict[str, str] = {}
        self.closing = asyncio.Event()
        # Set by the revocation push: re-check the credentials now, not at the next timer tick.
        self.recheck = asyncio.Event()
        self.response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
            "X-Request-Id": request.get(REQUEST_ID, "")})
        loop = asyncio.get_running_loop()
        self.now = loop.time
        self.last_write = self.now()

    async def serve(self) -> web.StreamResponse:
        open_streams: set[_Stream] = self.d.streams
        open_streams.add(self)
        guard = asyncio.create_task(self._guard(), name=f"sse-guard-{self.me.username}")
        try:
            await self.response.prepare(self.request)
            await self._write(b"retry: 3000\n\n")
            await self._pump()
        except ConnectionError:
            pass  # the client went away: nothing left to tell anyone
        except Exception:
            # Headers are sent: no error envelope is possible any more. The client reconnects
            # with its Last-Event-ID and loses nothing.
            log.exception("sse_stream_failed user=%s", self.me.username)
        finally:
            guard.cancel()
            open_streams.discard(self)
        return self.response

    async def _guard(self) -> None:
        """Re-check the caller on every revocation push and on a timer; close when refused.

        Independent of the pump: events may flow without a pause for pings.
        """
        while not self.closing.is_set():
            try:
                await asyncio.wait_for(self.recheck.wait(), timeout=self.d.sse_recheck_seconds)
            except TimeoutError:
                pass
            self.recheck.clear()
            try:
                allowed = await self._still_allowed()
            except Exception as exc:  # the database is out: keep serving; the next tick retries
                log.warning("sse_recheck_failed error=%s", type(exc).__name__)
                continue
            if not allowed:
                self.closing.set()

    async def _pump(self) -> None:
        while not self.closing.is_set() and not self._gone():
            try:
                batch = await self._next_batch()
            except (RedisError, OSError) as exc:
                log.warning("sse_redis_error error=%s", type(exc).__name__)
                await self._write(b": event stream unavailable, retrying\n\n")
                await self._pause(1.0)
                continue
            if batch is None:
                return
            if batch:
                self.cursor = batch[-1].id
                await self._send(await self._visible(batch))
            if self.now() - self.last_write >= self.ping_seconds:
                await self._write(b": ping\n\n")

    async def _next_batch(self) -> list[StreamEvent] | None:
        """The next entries, or None when the server is closing the stream."""
        reading = asyncio.ensure_future(read(self.reader, self.cursor, BATCH, self.block_ms))
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait({reading, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when this handler is cancelled: no read may outlive the stream's connection.
            closing.cancel()
            if not reading.done():
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
        return None if reading.cancelled() else reading.result()

    async def _visible(self, batch: list[StreamEvent]) -> list[StreamEvent]:
        wanted = [e for e in batch if not self.prefixes or e.kind.startswith(self.prefixes)]
        if self.me.is_admin:
            return wanted
        await self._learn_owners([e.campaign_id for e in wanted if e.user_id is None and e.campaign_id])
        mine = str(self.me.id)
        return [e for e in wanted
                if e.user_id == mine or (e.user_id is None and e.campaign_id and self.owners.get(e.campaign_id) == mine)]

    async def _learn_owners(self, campaign_ids: list[str]) -> None:
        """Owners of campaigns whose events came without a user id: one query per batch."""
        unknown: list[uuid.UUID] = []
        for cid in set(campaign_ids) - self.owners.keys():
            try:
                unknown.append(uuid.UUID(cid))
            except ValueError:
                self.owners[cid] = ""
        if not unknown:
            return
        if len(self.owners) > OWNER_CACHE:
            self.owners.clear()
        found = await campaign_owners(self.d.pool, unknown)
        for key in map(str, unknown):
            self.owners[key] = found.get(key, "")

    async def _send(self, events: list[StreamEvent]) -> None:
        if not events:
            return
        chunk = b"".join(b"id: %s\nevent: %s\ndata: %s\n\n" % (e.id.encode(), e.kind.encode(), e.payload)
                         for e in events)
        await self._write(chunk)

    async def _write(self, chunk: bytes) -> None:
        await self.response.write(chunk)
        self.last_write = self.now()

    async def _still_allowed(self) -> bool:
        """False once the user is disabled or demoted, or the token is revoked or outdated."""
        try:
            # Fresh: this re-check is the revocation push's backstop, never served from the cache.
            if self.token is not None:
                now = await authenticate_token(self.token, self.d, fresh=True)
            else:
                now = await authenticate(self.request, self.d, fresh=True)
        except EdmError:
            return False
        return now.role == self.me.role

    def _gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=seconds)
        except TimeoutError:
            pass


async def close_streams(app: web.Application) -> None:
    """`on_shutdown` hook: end every open stream so the server does not wait for them."""
    for stream in list(app[DEPS].streams):
        stream.closing.set()
