"""The write-through buffer: flush on size, on the timer, requeue on transient failure, isolate
poisoned items, drain on stop."""

from __future__ import annotations

import asyncio

from engine.dispatch.settle_buffer import TimedOverflowBuffer


async def test_flushes_on_size_and_timer_requeues_and_drains() -> None:
    batches: list[list[int]] = []
    fail = {"once": True}

    async def flush(items: list[int]) -> None:
        if fail["once"] and 99 in items:
            fail["once"] = False
            raise RuntimeError("database went away")
        batches.append(list(items))

    buf: TimedOverflowBuffer[int] = TimedOverflowBuffer(flush, max_size=3, max_delay=0.01, retry_delay=0.01,
                                                         transient=lambda exc: True)
    task = asyncio.create_task(buf.run())
    for i in range(3):
        buf.add(i)
    while not batches:
        await asyncio.sleep(0.001)
    assert batches[0] == [0, 1, 2]  # size
    buf.add(3)
    while len(batches) < 2:
        await asyncio.sleep(0.001)
    assert batches[1] == [3]  # timer
    buf.add(99)
    while len(batches) < 3:
        await asyncio.sleep(0.001)
    assert batches[2] == [99]  # requeued after the failed write, then written
    buf.add(7)
    buf.add(8)
    buf.stop()
    await asyncio.wait_for(task, 1)
    assert batches[-1] == [7, 8] and len(buf) == 0  # drained on stop


async def test_a_poisoned_item_is_isolated_rewritten_and_never_blocks_the_rest() -> None:
    written: list[int] = []
    isolated: list[tuple[int, bool]] = []

    async def flush(items: list[int]) -> None:
        if any(i < 0 for i in items):  # the database refuses negative items, whole batches with them
            raise ValueError("invalid byte sequence")
        written.extend(items)

    # -1 is rewritten as 1000 (a clean failure); -2's rewrite (-3) is refused again: set aside.
    buf: TimedOverflowBuffer[int] = TimedOverflowBuffer(
        flush, max_size=8, max_delay=0.01, retry_delay=0.01,
        quarantine=lambda i, exc: 1000 if i == -1 else -3,
        on_isolated=lambda i, exc, rewritten: isolated.append((i, rewritten)))
    task = asyncio.create_task(buf.run())
    for i in [1, 2, -1, 3, 4, 5, -2, 6, 7, 8]:
        buf.add(i)
    buf.stop()
    await asyncio.wait_for(task, 2)
    assert sorted(written) == [1, 2, 3, 4, 5, 6, 7, 8, 1000]
    assert isolated == [(-1, True), (-2, False)] and buf.dead == [-2] and buf.isolated == 1


async def test_transient_failures_keep_every_result_in_order_until_the_database_is_back() -> None:
    written: list[int] = []
    down = {"left": 5}

    async def flush(items: list[int]) -> None:
        if down["left"]:
            down["left"] -= 1
            raise ConnectionResetError("connection lost")
        written.extend(items)

    buf: TimedOverflowBuffer[int] = TimedOverflowBuffer(flush, max_size=4, max_delay=0.001, retry_delay=0.001,
                                                         transient=lambda exc: isinstance(exc, OSError))
    task = asyncio.create_task(buf.run())
    for i in range(10):
        buf.add(i)
    while len(written) < 10:
        await asyncio.sleep(0.005)
    buf.stop()
    await asyncio.wait_for(task, 1)
    assert written == list(range(10)) and not buf.dead


async def test_two_batches_are_written_at_once_and_a_backlog_in_larger_batches() -> None:
    started: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> None:
        started.append(list(items))
        await release.wait()

    buf: TimedOverflowBuffer[int] = TimedOverflowBuffer(flush, max_size=2, max_delay=0.001, writers=2, max_batch=5)
    task = asyncio.create_task(buf.run())
    for i in range(4):
        buf.add(i)
        while len(started) < (i + 1) // 2:
            await asyncio.sleep(0.001)
    assert started == [[0, 1], [2, 3]]  # the second batch did not wait for the first
    for i in range(4, 11):
        buf.add(i)
    await asyncio.sleep(0.01)
    assert len(started) == 2 and len(buf) == 7  # no third writer
    release.set()
    buf.stop()
    await asyncio.wait_for(task, 1)
    assert started[2:] == [[4, 5, 6, 7, 8], [9, 10]]  # the pile, taken up to max_batch at once
    assert buf.flushed == 11 and len(buf) == 0
