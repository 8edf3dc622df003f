"""Injected time: everything that reads the clock takes a `Clock`."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (intervals in memory); wall time is `now()`."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now() >= when` (or earlier if woken by the caller's own events)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class FakeClock:
    """A clock that only moves when told to; sleepers wake when time passes their deadline."""

    def __init__(self, start: datetime | None = None):
        self._now = self._start = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        """Fake seconds since the clock was made: it moves with `advance`/`set`, never back."""
        return (self._now - self._start).total_seconds()

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a fake clock never goes backwards")
        self._now = when
        self._changed.set()
        self._changed = asyncio.Event()

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    async def sleep_until(self, when: datetime) -> None:
        while self._now < when:
            await self._changed.wait()
