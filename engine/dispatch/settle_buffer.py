"""A write-through buffer: items are flushed in one batch on size or after a short delay.

A flush that fails for a transient reason (the database went away) puts the batch back at the
front and retries with a growing back-off: results stay in memory until the database is back.
A flush that fails for any other reason is poisoned by some item: the batch is split in halves
until the guilty items are alone, each is replaced by what `quarantine` makes of it (a clean
failure) and written again; an item even that cannot write is set aside (logged, counted). The
rest never waits behind it. `stop()` drains what is left. The delays are real time (they bound
write latency, they are not business rules), so they do not go through the engine's clock.

Up to `writers` batches are written at once (each flush takes its own pooled connection): one
statement at a time left the database idle while the engine handled a flush's follow-up, and the
results piled up. A backlog is taken in batches of up to `max_batch`, so a pile shrinks in fewer
statements. Batches may then commit out of order: items must not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Generic, TypeVar

log = logging.getLogger("edm.engine.settle_buffer")
T = TypeVar("T")


def _never_transient(exc: BaseException) -> bool:
    return False


class TimedOverflowBuffer(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], *, max_size: int = 500,
                 max_delay: float = 0.02, retry_delay: float = 0.1, max_retry_delay: float = 1.0,
                 transient: Callable[[BaseException], bool] = _never_transient,
                 quarantine: Callable[[T, BaseException], T | None] | None = None,
                 on_isolated: Callable[[T, BaseException, bool], None] | None = None,
                 writers: int = 1, max_batch: int | None = None):
        self._flush = flush
        self.max_size = max_size
        self.max_batch = max(max_size, max_batch or max_size)
        self.max_delay = max_delay
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._transient = transient
        self._quarantine = quarantine
        self._on_isolated = on_isolated
        self._items: list[T] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.flushed = 0
        # Items rewritten as failures (`quarantine`), and items set aside unwritten.
        self.isolated = 0
        self.dead: list[T] = []
        self._slots = asyncio.Semaphore(max(1, writers))
        self._writing: set[asyncio.Task[None]] = set()
        # Transient failures in a row (any writer's), and the last one while stopping.
        self._failures = 0
        self._given_up: BaseException | None = None

    def add(self, item: T) -> None:
        items = self._items
        items.append(item)
        # The loop only cares about the first item (start the timer) and a full batch: waking
        # it on every add would cost one task step per result.
        if len(items) == 1 or len(items) >= self.max_size:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[T]:
        """What waits to be written (a copy; not the batches being written)."""
        return list(self._items)

    async def run(self) -> None:
        """The flush loop (a named engine task); returns after `stop()` once drained."""
        try:
            while True:
                if self._given_up is not None:
                    raise self._given_up
                if not self._items:
                    if self._stopping and not self._writing:
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
                await self._slots.acquire()
                if self._failures:
                    self._slots.release()
                    # The database failed a write: no new one before the back-off.
                    await asyncio.sleep(min(self.max_retry_delay,
                                            self.retry_delay * 2 ** min(self._failures - 1, 10)))
                    await self._slots.acquire()
                if not self._items:
                    self._slots.release()
                    continue
                size = self.max_batch if len(self._items) > self.max_size else self.max_size
                batch, self._items = self._items[:size], self._items[size:]
                task = asyncio.create_task(self._writer(batch))
                self._writing.add(task)
        finally:
            writing = list(self._writing)
            for t in writing:
                t.cancel()
            # A cancelled writer puts its batch back: wait for that before returning.
            await asyncio.gather(*writing, return_exceptions=True)

    async def _writer(self, batch: list[T]) -> None:
        task = asyncio.current_task()
        try:
            await self._write(batch)
            self._failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # transient: _write put the unwritten items back
            self._failures += 1
            log.warning("settle_flush_retry items=%d attempt=%d error=%r", len(self._items), self._failures, exc)
            if self._stopping and self._failures > 3:
                self._given_up = exc
        finally:
            self._writing.discard(task)  # type: ignore[arg-type]
            self._slots.release()
            self._wake.set()

    async def _write(self, batch: list[T]) -> None:
        """Write `batch`, isolating poisoned items; raises (after putting back what is left)
        only for a transient error."""
        chunks = [batch]
        while chunks:
            chunk = chunks.pop()
            try:
                # Shielded: a cancellation must not lose a batch half-way through its write.
                await asyncio.shield(self._flush(chunk))
                self.flushed += len(chunk)
                continue
            except asyncio.CancelledError:
                self._put_back(chunk, chunks)
                raise
            except Exception as exc:
                if self._transient(exc):
                    self._put_back(chunk, chunks)
                    raise
                if len(chunk) > 1:
                    mid = len(chunk) // 2
                    chunks += [chunk[mid:], chunk[:mid]]  # popped from the end: first half first
                    continue
                await self._isolate(chunk[0], exc)

    def _put_back(self, chunk: list[T], chunks: list[list[T]]) -> None:
        rest = [x for c in [chunk, *reversed(chunks)] for x in c]
        self._items[:0] = rest
        chunks.clear()

    async def _isolate(self, item: T, exc: BaseException) -> None:
        """One item the database refuses: write its clean replacement, else set it aside."""
        replacement = self._quarantine(item, exc) if self._quarantine is not None else None
        if replacement is not None:
            # Counted before the write: the flush may complete the campaign, and whoever sees
            # that must see the count too (the shield resumes this task a step later).
            self.isolated += 1
            try:
                await asyncio.shield(self._flush([replacement]))
                self.flushed += 1
                log.error("settle_item_isolated error=%r: written as a failure", exc)
                if self._on_isolated is not None:
                    self._on_isolated(item, exc, True)
                return
            except asyncio.CancelledError:
                self.isolated -= 1
                self._items.insert(0, replacement)
                raise
            except Exception as again:
                self.isolated -= 1
                if self._transient(again):
                    self._items.insert(0, replacement)
                    raise
                exc = again
        self.dead.append(item)
        log.error("settle_item_dead error=%r: set aside unwritten", exc)
        if self._on_isolated is not None:
            self._on_isolated(item, exc, False)

    async def _full(self) -> None:
        while len(self._items) < self.max_size and not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    def stop(self) -> None:
        """Ask the loop to write what it holds and return."""
        self._stopping = True
        self._wake.set()
