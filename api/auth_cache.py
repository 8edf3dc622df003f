"""Users' token state (enabled, role, token version) kept for a second between requests.

Every bearer request needs it, and reading it was a third of the API's database work under
load. Whatever ends a user's tokens (disable, password reset or change, demotion, archiving)
goes through `api.revocation.announce`, which drops the entry here at once and, over the Redis
push, in every other API process; an event stream's own re-check reads the row itself. Without
the push (Redis down, a change made outside the API), a stale entry lives at most `ttl` seconds.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable

from engine.store.accounts import AuthState

MAX_ENTRIES = 100_000


class AuthCache:
    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.monotonic = monotonic
        self._entries: dict[uuid.UUID, tuple[float, AuthState | None]] = {}
        # When each user was last dropped: a read that started before it must not be kept.
        self._dropped: dict[uuid.UUID, float] = {}

    def get(self, user_id: uuid.UUID) -> tuple[bool, AuthState | None]:
        """(found, state): a state read less than `ttl` seconds ago (None = no such user)."""
        entry = self._entries.get(user_id)
        if entry is None or self.monotonic() - entry[0] >= self.ttl:
            return False, None
        return True, entry[1]

    def put(self, user_id: uuid.UUID, state: AuthState | None, read_at: float) -> None:
        """Keep a state read at `read_at` unless a revocation dropped the user after that read."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        dropped = self._dropped.get(user_id)
        if dropped is not None and dropped >= read_at:
            return  # a revocation landed while this row was being read: it may be the old row
        self._entries[user_id] = (read_at, state)

    def forget(self, user_id: uuid.UUID) -> None:
        self._entries.pop(user_id, None)
        if len(self._dropped) >= MAX_ENTRIES:
            self._dropped.clear()
        self._dropped[user_id] = self.monotonic()
