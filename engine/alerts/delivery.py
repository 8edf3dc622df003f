"""Delivers alerts to their channels: claimed in batches, posted concurrently, retried with
exponential backoff until delivered or `max_attempts` is reached (then `failed`, kept in the
list for people to see). Its own task, its own HTTP session: never on the dispatch path.

Errors recorded or logged name the failure (`HTTP 502`, `errcode 310000: …`, `TimeoutError`),
never the URL: a robot's URL carries its token.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from engine.domain.alert_formats import AlertNotice, build_request, reply_error
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.infra.secret_box import SecretBox

log = logging.getLogger("edm.alerts.delivery")
CHANNEL_DISABLED = "channel disabled"


@dataclass(frozen=True)
class DeliveryOptions:
    max_attempts: int = 6
    backoff_initial: float = 5.0  # seconds before the 2nd attempt; doubles each time
    backoff_max: float = 600.0
    timeout: float = 10.0  # per POST
    batch: int = 20
    lease: float = 60.0  # a claimed delivery is retried after this if its deliverer vanished
    idle_poll: float = 5.0  # real seconds between looks when nothing is due (other processes enqueue too)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return float(min(self.backoff_max, self.backoff_initial * 2 ** max(0, attempts - 1)))


async def post(session: aiohttp.ClientSession, channel_kind: str, url: str, secret: str | None,
               notice: AlertNotice, tz: ZoneInfo, now: datetime, timeout: float) -> str | None:
    """One POST to one channel; the error (None = delivered). Never raises for network trouble."""
    req = build_request(channel_kind, url, secret, notice, tz, now)
    try:
        async with session.post(req.url, data=req.body, headers=req.headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.content.read(64 * 1024)
            return reply_error(channel_kind, resp.status, body)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return type(exc).__name__


class AlertDeliverer:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, box: SecretBox, tz: ZoneInfo,
                 options: DeliveryOptions | None = None):
        self.pool = pool
        self.clock = clock
        self.box = box
        self.tz = tz
        self.options = options or DeliveryOptions()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def run(self) -> None:
        while True:
            self._wake.clear()
            n = await self.deliver_due()
            if n >= self.options.batch:
                continue
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        due = await self.pool.fetchval(Q["alerting.next_due"])
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if due is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep_until(due)))
        try:
            await asyncio.wait(waits, timeout=self.options.idle_poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def deliver_due(self) -> int:
        """Claim what is due now, post it, record the outcomes; returns how many were tried."""
        o = self.options
        now = self.clock.now()
        rows = await self.pool.fetch(Q["alerting.claim"], o.batch, now, o.lease)
        if not rows:
            return 0
        errors = await asyncio.gather(*(self._one(r, now) for r in rows))
        after = self.clock.now()
        give_up = [e is not None and (r["attempts"] + 1 >= o.max_attempts or e == CHANNEL_DISABLED)
                   for r, e in zip(rows, errors)]
        retry_at = [after + timedelta(seconds=o.backoff(r["attempts"] + 1)) for r in rows]
        await self.pool.execute(Q["alerting.settle"], [r["alert_id"] for r in rows], [r["channel_id"] for r in rows],
                                [e is None for e in errors], list(errors), give_up, after, retry_at)
        for r, e, g in zip(rows, errors, give_up):
            if e is None:
                self.delivered += 1
                log.info("alert_delivered alert=%s channel=%s attempt=%d", r["alert_id"], r["channel_id"],
                         r["attempts"] + 1)
            else:
                self.failed_attempts += 1
                log.warning("alert_delivery_failed alert=%s channel=%s attempt=%d error=%s%s", r["alert_id"],
                            r["channel_id"], r["attempts"] + 1, e, " (giving up)" if g else "")
        return len(rows)

    async def _one(self, r: Mapping[str, Any], now: datetime) -> str | None:
        if not r["enabled"]:
            return CHANNEL_DISABLED
        config = self.box.open(r["config"])
        notice = AlertNotice(str(r["alert_id"]), r["rule"], r["kind"], r["subject"], r["message"], dict(r["data"]),
                             r["opened_at"])
        return await post(self.session(), r["channel_kind"], config["url"], config.get("secret"), notice, self.tz,
                          now, self.options.timeout)


def test_notice(channel_name: str, now: datetime) -> AlertNotice:
    """What a channel test sends."""
    return AlertNotice(str(uuid.uuid4()), "test", "test", "test", f"test message for alert channel {channel_name}",
                       {}, now)
