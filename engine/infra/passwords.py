"""Password hashing with argon2id (memory-hard)."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self, *, time_cost: int = 2, memory_cost: int = 19 * 1024, parallelism: int = 1):
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        # Verifying against this when the user does not exist keeps the timing the same.
        self._dummy = self._hasher.hash("not-a-real-password")
        # Hashes run on their own threads, at most half the cores at once: a burst of logins
        # (a hundred dashboards starting) queues here instead of taking every core from the
        # event loop (asyncio's default pool would run 6 at once on 2 cores).
        self._threads = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) // 2),
                                           thread_name_prefix="argon2")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # argon2 takes tens of milliseconds of CPU by design: on the event loop it would stall every
    # other request (and the engine) for that long, per login.
    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.verify, stored_hash, password)
