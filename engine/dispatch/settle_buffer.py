"""A write-through buffer: items are flushed in one batch on size or after a short delay.

Flush failures put the batch back at the front and retry after a back-off; `stop()` drains
what is left. The delay is real time (it bounds write latency, it is not a business rule), so
it does not go through the engine's clock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Generic, TypeVar

log = logging.getLogger("edm.engine.settle_buffer")
T = TypeVar("T")


class TimedOverflowBuffer(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], *, max_size: int = 500,
                 max_delay: float = 0.02, retry_delay: float = 0.5):
        self._flush = flush
        self.max_size = max_size
        self.max_delay = max_delay
        self.retry_delay = retry_delay
        self._items: list[T] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.flushed = 0

    def add(self, item: T) -> None:
        items = self._items
        items.append(item)
        # The loop only cares about the first item (start the timer) and a full batch: waking
        # it on every add would cost one task step per result.
        if len(items) == 1 or len(items) >= self.max_size:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._items)

    async def run(self) -> None:
        """The flush loop (a named engine task); returns after `stop()` once drained."""
        while True:
            if not self._items:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._items) < self.max_size and not self._stopping:
                # Let a few more results arrive so one statement settles many of them.
                try:
                    await asyncio.wait_for(self._full(), self.max_delay)
                except asyncio.TimeoutError:
                    pass
            batch, self._items = self._items[: self.max_size], self._items[self.max_size:]
            try:
                # Shielded: a cancellation must not lose a batch half-way through its write.
                await asyncio.shield(self._flush(batch))
                self.flushed += len(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("settle_flush_failed items=%d", len(batch))
                self._items[:0] = batch
                if self._stopping:
                    raise
                await asyncio.sleep(self.retry_delay)

    async def _full(self) -> None:
        while len(self._items) < self.max_size and not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    def stop(self) -> None:
        """Ask the loop to write what it holds and return."""
        self._stopping = True
        self._wake.set()
