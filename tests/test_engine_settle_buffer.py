"""The write-through buffer: flush on size, on the timer, requeue on failure, drain on stop."""

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

    buf: TimedOverflowBuffer[int] = TimedOverflowBuffer(flush, max_size=3, max_delay=0.01, retry_delay=0.01)
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
