"""Background feeds: the overview poller and the event-stream reader, posting small messages."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import Callable

from textual.message import Message

from tui.client import ApiClient, ApiError, Unreachable
from tui.models import LiveEvent, Overview

Post = Callable[[Message], object]


class SnapshotArrived(Message):
    """A fresh overview, and how long the request took."""

    def __init__(self, snapshot: Overview, took: float) -> None:
        super().__init__()
        self.snapshot, self.took = snapshot, took


class ApiDown(Message):
    """The overview could not be fetched; the poller keeps trying."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class AuthLost(Message):
    """The token was refused (expired, revoked): the user must log in again."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class EventArrived(Message):
    def __init__(self, event: LiveEvent) -> None:
        super().__init__()
        self.event = event


class Poller:
    """Fetches the overview, then waits `interval` minus the fetch time (or until poked).

    The next refresh is scheduled only after the last one finished, so slow answers never
    pile requests up; a poke (after an action or an important event) refreshes at once.
    """

    def __init__(self, client: ApiClient, post: Post, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.post, self.interval, self.clock = client, post, interval, clock
        self.wake = asyncio.Event()

    def poke(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        failures = 0
        while True:
            self.wake.clear()
            started = time.monotonic()
            try:
                snapshot = await self.client.overview()
            except Unreachable as exc:
                failures += 1
                self.post(ApiDown(str(exc)))
                delay = min(3.0, 0.5 * failures)
            except ApiError as exc:
                if exc.status == 401:
                    self.post(AuthLost(exc.message))
                    return
                failures += 1
                self.post(ApiDown(f"{exc.code}: {exc.message}"))
                delay = min(5.0, 1.0 * failures)
            else:
                failures = 0
                took = time.monotonic() - started
                self.post(SnapshotArrived(snapshot, took))
                delay = self.interval - took
            if delay > 0:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)


class EventFeed:
    """Follows /events, resuming from the last seen id after any disconnect."""

    def __init__(self, client: ApiClient, post: Post, on_state: Callable[[str], object]) -> None:
        self.client, self.post, self.on_state = client, post, on_state
        self.last_id: str | None = None

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                async for event in self.client.events(self.last_id, on_open=lambda: self.on_state("live")):
                    failures = 0
                    self.last_id = event.id or self.last_id
                    self.post(EventArrived(event))
                failures = 0
                delay = 0.5  # the server closed a healthy stream (restart, proxy): resume soon
            except ApiError as exc:
                if exc.status == 401:
                    self.on_state("auth")
                    return
                failures += 1
                # 404 means this API has no event stream (yet): look again now and then.
                self.on_state("unavailable" if exc.status == 404 else "down")
                delay = 30.0 if exc.status == 404 else min(10.0, 2.0 * failures)
            except Unreachable:
                failures += 1
                self.on_state("down")
                delay = min(5.0, 0.5 * failures)
            await asyncio.sleep(delay)
