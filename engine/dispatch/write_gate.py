"""The engine's write lock: exclusive for every writer as before (`async with gate`), plus a
shared mode for the two hot writers, the dispatcher's bind and the settle flush.

Those two write disjoint rows: a bind moves `pending` subtasks to `sending`, a settle moves
`sending` ones on (a requeued subtask is handed back to a buffer only after its settle
committed), and neither writes a services row since the counters are written behind; campaigns
are only read by the bind. So they may run at once, each on its own pooled connection, while
anything else the engine writes (pauses, completions, resets, reloads, test sends) still runs
alone: an exclusive holder waits for the shared ones to finish, and new shared holders queue
behind it (first come, first served), so it is never starved.

The counters' write-behind (counter_writer.py) is a third shared holder: it writes services rows
only, which a bind never does; a settle does when failure streaks moved, so the two take turns
on `services_rows` as well (two multi-row writes of services never overlap).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Literal


class WriteGate(asyncio.Lock):
    def __init__(self) -> None:
        super().__init__()
        self._shared = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Taken (inside `shared()`) by the shared holders that write services rows.
        self.services_rows = asyncio.Lock()

    async def acquire(self) -> Literal[True]:
        """Exclusive: no other holder, shared or not."""
        await super().acquire()
        try:
            await self._idle.wait()
        except BaseException:
            super().release()
            raise
        return True

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Alongside other shared holders; never alongside an exclusive one."""
        await self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    async def acquire_shared(self) -> None:
        """`shared()` for a hold that ends in another task (a bind the dispatcher hands off)."""
        await super().acquire()  # queues behind an exclusive holder or waiter
        self._shared += 1
        self._idle.clear()
        super().release()

    def release_shared(self) -> None:
        self._shared -= 1
        if not self._shared:
            self._idle.set()

    @property
    def shared_holders(self) -> int:
        return self._shared
