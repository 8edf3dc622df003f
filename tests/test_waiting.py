"""wait_until: a cancellation of the waiting task is never lost, whenever it lands."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from engine.dispatch.waiting import wait_until
from engine.infra.clock import FakeClock


async def test_a_cancel_landing_while_the_wait_cleans_up_is_not_swallowed() -> None:
    clock = FakeClock(datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc))
    for ticks in range(8):
        wake = asyncio.Event()

        async def loop_until_cancelled() -> None:
            # As the engine's loops do: wait, then wait again, until cancelled.
            while True:
                await wait_until(clock, clock.now() + timedelta(hours=1), wake)
                wake.clear()

        task = asyncio.create_task(loop_until_cancelled())
        await asyncio.sleep(0)
        wake.set()  # the wait returns normally and cleans up its other waiter...
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()  # ...and the stop lands at some point of that
        done, _ = await asyncio.wait({task}, timeout=2.0)
        assert task in done and task.cancelled(), f"cancellation lost after {ticks} loop turns"
