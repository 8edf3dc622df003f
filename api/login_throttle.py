"""Failed-login throttling in Redis, per account and per client address."""

from __future__ import annotations

from engine.domain.errors import TooManyAttempts


class LoginThrottle:
    def __init__(self, redis, max_failures: int, window_seconds: int):
        self._redis = redis
        self._max = max_failures
        self._window = window_seconds

    def _keys(self, username: str, address: str) -> list[str]:
        return [f"edm:login:user:{username.lower()}", f"edm:login:addr:{address}"]

    async def check(self, username: str, address: str) -> None:
        counts = await self._redis.mget(self._keys(username, address))
        if any(c is not None and int(c) >= self._max for c in counts):
            raise TooManyAttempts("too many failed logins; try again later", field="username")

    async def failed(self, username: str, address: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in self._keys(username, address):
                # The window starts at the first failure (SET NX, not EXPIRE NX: Redis 6 has none).
                pipe.set(key, 0, ex=self._window, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self._redis.delete(self._keys(username, "")[0])
