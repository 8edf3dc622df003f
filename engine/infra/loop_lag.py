"""Event-loop lag: how late a short sleep wakes up, i.e. how long callbacks ahead of it held the loop.

The engine and the control API share one loop by design, so a synchronous chunk anywhere (a big
batch, a large JSON encode, a hash on the loop) delays every request and every send. The overshoot
of a 10 ms sleep measures exactly that wait, whatever caused it; `edm_loop_lag_seconds` exposes it.
It reads the loop's own clock, not the injected one: the lag is a property of this process's real
time, and a fake clock in tests would make it meaningless.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Callable


class LoopLagMonitor:
    def __init__(self, observe: Callable[[float], None], interval: float = 0.01):
        self.observe = observe
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            # A timer never fires early; the loop's clock resolution can make it look so.
            self.observe(max(0.0, loop.time() - started - self.interval))
