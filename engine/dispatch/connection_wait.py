"""Services that came due while their connection pool was full: they wait here, unbound, oldest
due first, and go back on the dispatcher's heap (with their due time) as connections free."""

from __future__ import annotations

import uuid
from collections import deque
from typing import Callable

from engine.dispatch.hot_state import ServiceState
from engine.providers.base import ConnectionSlots

# A parked heap entry: (due time on the monotonic scale, service, its heap generation).
Parked = tuple[float, uuid.UUID, int]


class ConnectionWait:
    """The dispatcher's waiting room for services whose pool has no free connection.

    Nothing here spins: a parked service leaves the heap, so the dispatcher sleeps until its next
    timer or until a request of that pool comes back (`freed`). A parked service stays armed
    (`in_heap`), so waking it for new work does not queue it twice; re-arming it (a throttle, an
    unfreeze) bumps its generation and the parked entry is dropped as stale when it comes back.
    """

    def __init__(self, *, wake: Callable[[], None], rearm: Callable[[float, uuid.UUID, int], None]):
        self.wake = wake
        self.rearm = rearm
        self._parked: dict[ConnectionSlots, deque[Parked]] = {}

    def park(self, slots: ConnectionSlots, due: float, s: ServiceState) -> None:
        s.in_heap = True
        queue = self._parked.get(slots)
        if queue is None:
            queue = self._parked[slots] = deque()
        queue.append((due, s.id, s.heap_gen))

    def freed(self, slots: ConnectionSlots) -> None:
        """A request of this pool is over: a parked service may take its connection."""
        if slots in self._parked:
            self.wake()

    def unpark(self) -> bool:
        """Put back on the heap as many parked services as their pools have free connections;
        False when none went back. A service put back that turns out idle takes no connection,
        so the dispatcher asks again until the pools are full or nobody waits."""
        moved = False
        for slots, queue in list(self._parked.items()):
            for _ in range(min(slots.free, len(queue))):
                self.rearm(*queue.popleft())
                moved = True
            if not queue:
                del self._parked[slots]
        return moved
