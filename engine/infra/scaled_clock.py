"""A clock whose time runs `factor` times faster than real time, and can jump forward.

For end-to-end runs (tests, the demo): a 1 s interval passes in 1/factor s of real time, and a
jump moves across a quota reset without waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta


class ScaledClock:
    """`start` is the virtual time now, or at the wall-clock instant `wall_anchor` (a Unix time)
    if given: processes sharing `start` and `wall_anchor` share one virtual time line."""

    def __init__(self, start: datetime, factor: float = 50.0, *, wall_anchor: float | None = None):
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.factor = factor
        self._base_virtual = self._origin = start
        self._real = time.monotonic if wall_anchor is None else time.time
        self._base_real = self._real() if wall_anchor is None else wall_anchor
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._base_virtual + timedelta(seconds=(self._real() - self._base_real) * self.factor)

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made (jumps forward with `advance`, never back)."""
        return (self.now() - self._origin).total_seconds()

    def advance(self, seconds: float) -> None:
        """Jump forward; sleepers whose deadline is passed wake at once."""
        self._base_virtual += timedelta(seconds=seconds)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def set(self, when: datetime) -> None:
        delta = (when - self.now()).total_seconds()
        if delta < 0:
            raise ValueError("a scaled clock never goes backwards")
        self.advance(delta)

    async def sleep_until(self, when: datetime) -> None:
        while True:
            delay = (when - self.now()).total_seconds()
            if delay <= 0:
                return
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), delay / self.factor)
            except asyncio.TimeoutError:
                pass
