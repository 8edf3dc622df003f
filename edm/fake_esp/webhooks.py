"""The fake ESP plays EngageLab's other side: after a send it posts signed status callbacks and
events (delivered / invalid / soft_bounce; report / open / click / unsubscribe) to the engine."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from typing import Annotated, Any

import aiohttp
import msgspec
import orjson
from msgspec import Meta

Rate = Annotated[float, Meta(ge=0, le=1)]


class Feedback(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where one api_user's callbacks go and how recipients behave. Bounces are shares of sends;
    complaint, open, click and unsubscribe are shares of the delivered ones."""

    url: str
    secret: str
    hard_bounce_rate: Rate = 0.0
    soft_bounce_rate: Rate = 0.0
    complaint_rate: Rate = 0.0
    open_rate: Rate = 0.0
    click_rate: Rate = 0.0
    unsubscribe_rate: Rate = 0.0
    delay_ms: Annotated[float, Meta(ge=0, le=600_000)] = 0.0


class Posted(msgspec.Struct, kw_only=True):
    """One callback the fake posted, and the engine's answer."""

    to: str
    request_id: str | None
    kind: str
    status: int
    body: bytes


def sign(secret: str, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).hexdigest()


def plan(rng: random.Random, fb: Feedback) -> list[str]:
    """The callbacks one accepted message produces, in order."""
    draw = rng.random()
    if draw < fb.hard_bounce_rate:
        return ["invalid"]
    if draw < fb.hard_bounce_rate + fb.soft_bounce_rate:
        return ["soft_bounce"]
    kinds = ["delivered"]
    for kind, rate in (("report", fb.complaint_rate), ("open", fb.open_rate), ("click", fb.click_rate),
                       ("unsubscribe", fb.unsubscribe_rate)):
        if rng.random() < rate:
            kinds.append(kind)
    return kinds


def body(kind: str, to: str, email_id: str, custom_args: dict[str, Any] | None, itime: int) -> bytes:
    """EngageLab's callback shape: `status` for message statuses, `response` for events."""
    item: dict[str, Any] = {"server": "email", "message_id": email_id, "to": to, "itime": itime,
                            "custom_args": custom_args or {}}
    if kind in ("delivered", "invalid", "soft_bounce"):
        item["status"] = {"message_status": kind, "status_data": {"email_id": email_id}}
    else:
        data: dict[str, Any] = {"email_id": email_id}
        if kind == "click":
            data["url"] = "https://example.com/landing"
        item["response"] = {"event": kind, "response_data": data}
    return orjson.dumps(item)


class WebhookPoster:
    """Posts callbacks from its own tasks, never delaying the send answer; keeps what it posted."""

    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def schedule(self, fb: Feedback, kinds: list[str], to: str, request_id: str | None, email_id: str,
                 custom_args: dict[str, Any] | None) -> None:
        task = asyncio.get_running_loop().create_task(self._post(fb, kinds, to, request_id, email_id, custom_args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _post(self, fb: Feedback, kinds: list[str], to: str, request_id: str | None, email_id: str,
                    custom_args: dict[str, Any] | None) -> None:
        if fb.delay_ms:
            await asyncio.sleep(fb.delay_ms / 1000)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        for n, kind in enumerate(kinds):
            raw = body(kind, to, email_id, custom_args, int(time.time() * 1000) + n)
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-WebHook-Timestamp": ts,
                       "X-WebHook-AppKey": "email", "X-WebHook-Signature": sign(fb.secret, ts)}
            try:
                async with self._session.post(fb.url, data=raw, headers=headers) as resp:
                    status = resp.status
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                status = 0
            self.posted.append(Posted(to=to, request_id=request_id, kind=kind, status=status, body=raw))

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._session is not None:
            await self._session.close()
