"""Failed-login throttling (the rule: engine.domain.login_rules), counted in Redis.

While Redis is unavailable the same counters are kept in PostgreSQL, so logins go on being
both possible and throttled during an outage; the two sets of counters are not merged after.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from engine.domain.errors import TooManyAttempts
from engine.domain.login_rules import Counter, Decision, ThrottleRule, decide
from engine.infra.clock import Clock
from engine.store import login_attempts

log = logging.getLogger("edm.api.login")

PREFIX = "edm:login:"


def account_key(username: str) -> str:
    return f"acct:{username.lower()}"


def pair_key(username: str, address: str) -> str:
    return f"pair:{username.lower()}:{address}"


class LoginThrottle:
    def __init__(self, redis: aioredis.Redis, pool: asyncpg.Pool, clock: Clock, max_attempts: int,
                 window_seconds: int):
        self._redis, self._pool, self._clock = redis, pool, clock
        self.rule = ThrottleRule(max_attempts, timedelta(seconds=window_seconds))

    async def reserve(self, username: str, address: str) -> None:
        """Count this attempt before its password is checked; refuse it if over the limits."""
        keys = (pair_key(username, address), account_key(username))
        now = self._clock.now()
        try:
            decision = await self._reserve_in_redis(*keys, now)
        except (RedisError, OSError) as exc:
            log.warning("login_throttle_fallback error=%s", type(exc).__name__)
            decision = await login_attempts.reserve(self._pool, self.rule, *keys, now)
        if not decision.allowed:
            seconds = max(1, math.ceil(decision.retry_after.total_seconds()))
            raise TooManyAttempts(f"too many failed logins; try again in {seconds} s", field="username",
                                  details={"retry_after": seconds})

    async def succeeded(self, username: str, address: str) -> None:
        keys = [pair_key(username, address), account_key(username)]
        try:
            await self._redis.delete(*(PREFIX + k for k in keys))
        except (RedisError, OSError):
            pass  # the counters in Redis will expire by themselves
        await login_attempts.clear(self._pool, keys)

    async def _reserve_in_redis(self, pair: str, account: str, now: datetime) -> Decision:
        keys = [PREFIX + pair, PREFIX + account]
        ttl = int((self.rule.window + self.rule.max_delay).total_seconds())
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # WATCH: a concurrent attempt that changes either counter makes EXEC fail,
                    # and this one is decided again on the new counts.
                    await pipe.watch(*keys)
                    stored = [await pipe.hgetall(k) for k in keys]  # type: ignore[misc]
                    decision = decide(self.rule, _counter(stored[0]), _counter(stored[1]), now)
                    pipe.multi()
                    if decision.allowed:
                        for key, c in zip(keys, (decision.pair, decision.account)):
                            pipe.hset(key, mapping=_fields(c))
                            pipe.expire(key, ttl)
                    await pipe.execute()
                    return decision
                except WatchError:
                    continue


def _counter(raw: Mapping[Any, Any]) -> Counter:
    if not raw:
        return Counter()
    return Counter(int(raw[b"a"]), _at(raw[b"s"]), _at(raw[b"n"]) if int(raw[b"n"]) else None)


def _fields(c: Counter) -> dict[Any, Any]:
    assert c.started is not None
    return {"a": c.attempts, "s": _ms(c.started), "n": _ms(c.next_allowed) if c.next_allowed else 0}


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _at(raw: Any) -> datetime:
    return datetime.fromtimestamp(int(raw) / 1000, tz=timezone.utc)


async def unlock(redis: aioredis.Redis, pool: asyncpg.Pool, username: str) -> int:
    """The admin's escape: forget every counter of this account (all addresses, both stores)."""
    name = username.lower()
    found = 0
    pattern = PREFIX + "pair:" + _glob_escape(name) + ":*"
    async for key in redis.scan_iter(match=pattern, count=500):
        found += await redis.delete(key)
    found += await redis.delete(PREFIX + account_key(name))
    found += await login_attempts.clear_account(pool, account_key(name), f"pair:{name}:")
    return found


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
