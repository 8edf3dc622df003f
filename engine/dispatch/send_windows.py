"""Keeps each campaign's `window_closed` flag true to the clock.

The flag is what dispatch reads (a campaign outside its window is not runnable). It is brought
up to date at the start of every dispatcher tick, under the write lock and with the tick's own
`now`, so no request ever starts outside a window, even when the clock jumps; and by this
task at each window boundary, so a window that opens wakes its campaign without a tick. Every
flip marks the owner for the pause keeper, which shows or clears `OUTSIDE_SEND_WINDOW`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from datetime import datetime
from typing import Callable

from engine.dispatch.hot_state import CampaignState, HotState
from engine.dispatch.waiting import wait_until
from engine.infra.clock import Clock


class WindowKeeper:
    def __init__(self, clock: Clock, state: HotState, write_lock: asyncio.Lock,
                 mark_dirty: Callable[[set[uuid.UUID]], None], wake_user: Callable[[uuid.UUID], None]):
        self.clock = clock
        self.state = state
        self.write_lock = write_lock
        self.mark_dirty = mark_dirty
        self.wake_user = wake_user
        # (next change, order, campaign id, generation): older generations are stale.
        self._heap: list[tuple[datetime, int, uuid.UUID, int]] = []
        self._gen: dict[uuid.UUID, int] = {}
        self._order = itertools.count()
        self._wake = asyncio.Event()

    def watch(self, c: CampaignState, now: datetime) -> None:
        """(Re)read a campaign's window: set its flag for `now` and arm its next change."""
        gen = self._gen[c.id] = self._gen.get(c.id, 0) + 1
        if c.window is None:
            c.window_closed = False
            return
        c.window_closed = not c.window.is_open(now)
        heapq.heappush(self._heap, (c.window.next_change(now), next(self._order), c.id, gen))
        self._wake.set()

    def advance(self, now: datetime) -> None:
        """Flip the flags whose boundary has come (call under the write lock)."""
        heap, changed, opened = self._heap, set(), set()
        while heap and heap[0][0] <= now:
            _, _, cid, gen = heapq.heappop(heap)
            c = self.state.campaigns.get(cid)
            if c is None or c.window is None or gen != self._gen.get(cid):
                continue
            closed = not c.window.is_open(now)
            if closed != c.window_closed:
                c.window_closed = closed
                changed.add(c.user_id)
                if not closed:
                    opened.add(c.user_id)
            heapq.heappush(heap, (c.window.next_change(now), next(self._order), cid, gen))
        if changed:
            self.mark_dirty(changed)
        for uid in opened:
            self.wake_user(uid)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            deadline = self._heap[0][0] if self._heap else None
            if deadline is not None and deadline <= self.clock.now():
                async with self.write_lock:
                    self.advance(self.clock.now())
                continue
            await wait_until(self.clock, deadline, self._wake)
