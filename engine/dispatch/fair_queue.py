"""Per-service queues of users with runnable work, ordered by who was served least recently.

Each service keeps a heap with at most one entry per mapped user. Keys only grow (a user's
`last_served` moves forward whenever any service serves it), so entries are refreshed lazily:
an entry whose key is out of date is re-inserted with the current key when it reaches the top.
A pick therefore costs O(log n) amortised instead of a scan of every mapped user, and the
order is exactly `routing.pick_user`'s: (last_served, oldest campaign, user id).
"""

from __future__ import annotations

import heapq
import uuid
from typing import Callable, TypeVar

from engine.dispatch.hot_state import HotState, UserState

Entry = tuple[int, float, int, uuid.UUID]
R = TypeVar("R")


class FairQueues:
    def __init__(self, state: HotState):
        self.state = state
        self._heaps: dict[uuid.UUID, list[Entry]] = {}
        self._members: dict[uuid.UUID, set[uuid.UUID]] = {}
        # Users held back with their start group: dropped from the queues, offered again on release.
        self.held: set[uuid.UUID] = set()

    def _tiebreak(self, u: UserState) -> float:
        return self.state.campaigns[u.campaigns[0]].created_ts if u.campaigns else 0.0

    def offer(self, u: UserState) -> None:
        """The user may have runnable work: make sure each of its services' queues holds it."""
        if not u.campaigns:
            return
        entry = (u.last_served, self._tiebreak(u), u.id.int, u.id)
        uid, heaps, members_of = u.id, self._heaps, self._members
        for sid in u.services:
            members = members_of.get(sid)
            if members is None:
                members = members_of[sid] = set()
            if uid not in members:
                members.add(uid)
                heap = heaps.get(sid)
                if heap is None:
                    heap = heaps[sid] = []
                heapq.heappush(heap, entry)

    def pick(self, service_id: uuid.UUID) -> UserState | None:
        """The mapped user with runnable work served least recently, or None (the entry stays)."""
        heap = self._heaps.get(service_id)
        if not heap:
            return None
        members = self._members[service_id]
        st = self.state
        while heap:
            last, tiebreak, uid_int, uid = heap[0]
            u = st.users.get(uid)
            if u is None or service_id not in u.services or uid in self.held or not st.has_runnable(u):
                heapq.heappop(heap)
                members.discard(uid)
                continue
            served, first = u.last_served, self._tiebreak(u)
            if last != served or tiebreak != first:
                heapq.heapreplace(heap, (served, first, uid_int, uid))
                continue
            return u
        return None

    def pick_first(self, service_id: uuid.UUID, take: Callable[[UserState], R | None]) -> tuple[UserState, R] | None:
        """The first user in fairness order for whom `take` finds work (domain limits): users passed
        over keep their place and are not charged a turn."""
        heap = self._heaps.get(service_id)
        if not heap:
            return None
        passed: list[Entry] = []
        try:
            while True:
                u = self.pick(service_id)
                if u is None:
                    return None
                got = take(u)
                if got is not None:
                    return u, got
                passed.append(heapq.heappop(heap))
        finally:
            for e in passed:
                heapq.heappush(heap, e)

    def forget_service(self, service_id: uuid.UUID) -> None:
        self._heaps.pop(service_id, None)
        self._members.pop(service_id, None)
