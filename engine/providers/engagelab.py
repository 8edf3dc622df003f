"""EngageLab email API adapter over one shared aiohttp session."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from engine.providers.base import (
    LOCAL_CONGESTION,
    NETWORK_ERROR,
    TIMEOUT,
    ConnectionSlots,
    Message,
    SendResult,
    scrub,
)

log = logging.getLogger("edm.providers.engagelab")

# EngageLab's production (Singapore) endpoint; a service may override it (e.g. the fake ESP).
DEFAULT_BASE_URL = "https://email.api.engagelab.cc"
SEND_PATH = "/v1/mail/send"
# Connections of the shared pool, i.e. EngageLab requests in flight at once (EDM_HTTP_POOL_SIZE).
DEFAULT_POOL_SIZE = 200


class EngageLabTransport:
    """Owns the one HTTP session (and its connection pool) shared by every EngageLab service.

    `slots` counts the pool's connections for the engine, which binds no more requests than
    there are (`EDM_HTTP_POOL_SIZE`), so its requests never queue here. The wait for a free
    pooled connection is still possible for requests made outside the dispatcher (test sends)
    and is local congestion, not the provider's slowness: it has its own limit (`pool_wait`), and
    a request that times out there never left the machine (`not_sent`: back to pending, counted
    nowhere). The provider's timeout (the message's, i.e. the service's `request_timeout`, else
    `total_timeout`: connect, send and answer) starts once the request has a connection.

    The wait happens here, on a semaphore of as many permits as the pool has connections, taken
    before aiohttp is asked (so aiohttp's own pool never queues a request): a free permit costs
    nothing, where aiohttp's trace hooks, which used to tell the wait apart, cost every request.
    """

    def __init__(self, *, pool_limit: int = DEFAULT_POOL_SIZE, connect_timeout: float = 5.0,
                 total_timeout: float = 30.0, pool_wait: float = 10.0):
        self.pool_limit = pool_limit
        self.slots = ConnectionSlots(pool_limit)
        self.total_timeout = total_timeout
        self.pool_wait = pool_wait
        # aiohttp's own `connect` timeout would include the pool wait: only the TCP connect here.
        self.timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        # A permit per pooled connection (born with the session, in its loop).
        self._connections = asyncio.Semaphore(pool_limit)
        # Requests that found no free connection and waited for one (the engine's never should).
        self.queued = 0

    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use (it must be born inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_limit, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, raise_for_status=False,
                headers={"User-Agent": "edm-dispatch"},
            )
            self._connections = asyncio.Semaphore(self.pool_limit)
        return self._session

    async def connection(self) -> bool:
        """Take a connection's permit, waiting at most `pool_wait` seconds; False: none came free."""
        permits = self._connections
        if permits.locked():
            self.queued += 1
            try:
                async with asyncio.timeout(self.pool_wait):
                    await permits.acquire()
            except TimeoutError:
                return False
        else:
            await permits.acquire()  # free: returns at once
        return True

    def release(self) -> None:
        self._connections.release()

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class EngageLabProvider:
    """One EngageLab account (`api_user`/`api_key`) as a `Provider`."""

    def __init__(self, transport: EngageLabTransport, base_url: str | None, api_user: str, api_key: str):
        self._transport = transport
        self.slots: ConnectionSlots | None = transport.slots
        self._url = (base_url or DEFAULT_BASE_URL).rstrip("/") + SEND_PATH
        self.api_user = api_user
        self._api_key = api_key
        self._auth = basic_auth(api_user, api_key)
        # The same for every request of the account (aiohttp copies them, never changes them).
        self._headers = {"Authorization": self._auth, "Content-Type": "application/json"}

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"EngageLabProvider(url={self._url!r}, api_user={self.api_user!r})"

    def answer_now(self, message: Message) -> SendResult | None:
        return None  # every answer is EngageLab's, over HTTP

    async def send(self, message: Message) -> SendResult:
        payload = {
            "from": message.from_address,
            "to": [message.to],
            "body": {"subject": message.subject, "content": {"html": message.html, "text": message.text}},
            # One id per attempt (request_id_of): the subtask id, with the attempt for a retry;
            # custom_args ties the request back to its subtask.
            "request_id": message.request_id or message.subtask_id,
            "custom_args": {"campaign_id": message.campaign_id, "subtask_id": message.subtask_id},
        }
        if message.headers:
            payload["headers"] = message.headers
        transport = self._transport
        session = transport.session()
        if not await transport.connection():
            log.warning("engagelab_pool_wait api_user=%s waited=%.1fs", self.api_user, transport.pool_wait)
            return SendResult.not_sent(LOCAL_CONGESTION, f"no free connection in {transport.pool_wait:g} s")
        try:
            async with asyncio.timeout(message.timeout or transport.total_timeout):
                async with session.post(self._url, data=orjson.dumps(payload), headers=self._headers) as resp:
                    body = await resp.read()
                    return self._result(resp.status, resp.headers.get("Retry-After"), body, resp.reason or "")
        except asyncio.TimeoutError as exc:
            # Covers aiohttp's connect and read timeouts (both are TimeoutError subclasses).
            return self._trouble(TIMEOUT, f"no answer from the provider in time ({type(exc).__name__})")
        except (aiohttp.ClientError, OSError) as exc:
            return self._trouble(NETWORK_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            transport.release()

    async def close(self) -> None:
        """Nothing of its own to close: the session belongs to the shared transport."""
        return None

    def _trouble(self, code: str, text: str) -> SendResult:
        text = scrub(text, self._api_key, self._auth.removeprefix("Basic "))
        log.warning("engagelab_send_error api_user=%s code=%s error=%s", self.api_user, code, text)
        return SendResult.failed(code, text)

    def _result(self, status: int, retry_after: str | None, body: bytes, reason: str) -> SendResult:
        data = _json_object(body)
        if 200 <= status < 300:
            ids = data.get("email_ids")
            message_id = str(ids[0]) if isinstance(ids, list) and ids else None
            return SendResult.sent(message_id)
        code = str(data["code"]) if data.get("code") is not None else f"HTTP_{status}"
        text = data.get("message")
        if not isinstance(text, str) or not text:
            text = f"HTTP {status} {reason}".strip()
        text = scrub(text, self._api_key, self._auth.removeprefix("Basic "))
        if status == 429:
            return SendResult.throttled(code, text, parse_retry_after(retry_after))
        return SendResult.failed(code, text)


def basic_auth(user: str, password: str) -> str:
    """An `Authorization: Basic` value (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or {} for anything else (HTML error pages, empty bodies)."""
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return max(seconds, 0.0) if seconds == seconds else None  # NaN guard


__all__ = ["DEFAULT_BASE_URL", "EngageLabProvider", "EngageLabTransport", "basic_auth", "parse_retry_after"]
