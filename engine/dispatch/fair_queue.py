"""Per-service queues of users with runnable work, ordered by who was served least recently.

Fairness for a service is `engine.domain.fairness.pick_user`'s rule over the users mapped to it:
the one with runnable work served least recently, then the oldest campaign, then the user id.
Users mapped to the same services share one mapping (`UserState.services`, one frozenset per
distinct mapping), so the queues are kept in two levels:

- per mapping, a heap of its users with work;
- per service, a heap of its mappings, each keyed by (a lower bound of) its first user's key.

A service can only serve a mapping's first user, so when a hundred users share a pool of
services, a pick looks at the pool's one mapping, not at a hundred users. Keys only grow (a
user's `last_served` moves forward whenever any service serves it), so entries are refreshed
lazily: an entry whose key is out of date is put back with the current key when it reaches the
top. The one way a mapping's first key goes down is a user offered with work again after a
while: then every service of the mapping is given a new entry (`_lowered`). Each service keeps,
per mapping, the key of its newest entry; an older one reaching the top is dropped.
"""

from __future__ import annotations

import heapq
import uuid
from typing import Callable, TypeVar

from engine.dispatch.hot_state import HotState, UserState

Key = tuple[int, float, int]  # (last_served, oldest campaign's creation, user id as an int)
Mapping = frozenset[uuid.UUID]  # a mapping's services (shared by the users mapped to exactly them)
UserEntry = tuple[int, float, int, uuid.UUID]
MappingEntry = tuple[int, float, int, int, Mapping]  # a key, then an order number (never compares sets)
R = TypeVar("R")


class FairQueues:
    def __init__(self, state: HotState):
        self.state = state
        # Per mapping: its users with work (a heap) and the set of them.
        self._users: dict[Mapping, list[UserEntry]] = {}
        self._members: dict[Mapping, set[uuid.UUID]] = {}
        # Per service: its mappings (a heap) and each one's newest entry (its key and order number).
        self._heaps: dict[uuid.UUID, list[MappingEntry]] = {}
        self._newest: dict[uuid.UUID, dict[Mapping, tuple[Key, int]]] = {}
        self._order = 0
        # Users held back with their start group: dropped from the queues, offered again on release.
        self.held: set[uuid.UUID] = set()

    def _key(self, u: UserState) -> Key:
        return (u.last_served, self.state.campaigns[u.campaigns[0]].created_ts if u.campaigns else 0.0, u.id.int)

    def offer(self, u: UserState) -> None:
        """The user may have runnable work: make sure its mapping's queue holds it."""
        if not u.campaigns or not u.services:
            return
        mapping, uid = u.services, u.id
        members = self._members.get(mapping)
        if members is None:
            members = self._members[mapping] = set()
            self._users[mapping] = []
        if uid in members:
            return
        members.add(uid)
        heap = self._users[mapping]
        key = self._key(u)
        lowered = not heap or key < heap[0][:3]  # the heap's top key is a lower bound of its first
        heapq.heappush(heap, (*key, uid))
        if lowered:
            self._lowered(mapping, key)

    def _lowered(self, mapping: Mapping, key: Key) -> None:
        """The mapping's first key may now be `key`, lower than its services' entries say."""
        for sid in mapping:
            newest = self._newest.get(sid)
            if newest is None:
                newest = self._newest[sid] = {}
                self._heaps[sid] = []
            self._lower(sid, newest, mapping, key)

    def _lower(self, service_id: uuid.UUID, newest: dict[Mapping, tuple[Key, int]], mapping: Mapping,
               key: Key) -> None:
        """A new entry for the mapping in this service's heap when `key` is below the one it knows."""
        known = newest.get(mapping)
        if known is None or key < known[0]:
            self._push(service_id, newest, mapping, key)

    def _push(self, service_id: uuid.UUID, newest: dict[Mapping, tuple[Key, int]], mapping: Mapping,
              key: Key, *, replace_top: bool = False) -> None:
        """The mapping's newest entry in this service's heap (instead of the heap's top entry)."""
        self._order += 1
        newest[mapping] = (key, self._order)
        entry = (*key, self._order, mapping)
        if replace_top:
            heapq.heapreplace(self._heaps[service_id], entry)
        else:
            heapq.heappush(self._heaps[service_id], entry)

    def _first(self, mapping: Mapping) -> tuple[UserState, Key] | None:
        """The mapping's user with runnable work served least recently and its key (the mapping's
        heap refreshed), or None."""
        heap = self._users.get(mapping)
        if not heap:
            return None
        members = self._members[mapping]
        st = self.state
        while heap:
            last, tiebreak, uid_int, uid = heap[0]
            u = st.users.get(uid)
            if u is None or u.services is not mapping or uid in self.held or not st.has_runnable(u):
                heapq.heappop(heap)
                members.discard(uid)
                continue
            key = self._key(u)
            if key != (last, tiebreak, uid_int):
                heapq.heapreplace(heap, (*key, uid))
                continue
            return u, key
        return None

    def pick(self, service_id: uuid.UUID) -> UserState | None:
        """The mapped user with runnable work served least recently, or None (the entry stays)."""
        heap = self._heaps.get(service_id)
        if not heap:
            return None
        newest = self._newest[service_id]
        while heap:
            last, tiebreak, uid_int, order, mapping = heap[0]
            known = newest.get(mapping)
            if known is None or known[1] != order:
                heapq.heappop(heap)  # an older entry of a mapping given a newer one
                continue
            first = self._first(mapping)
            if first is None:
                heapq.heappop(heap)
                del newest[mapping]  # offered again: every service of the mapping gets an entry
                continue
            u, key = first
            if key != known[0]:
                self._push(service_id, newest, mapping, key, replace_top=True)
                continue
            return u
        return None

    def pick_first(self, service_id: uuid.UUID, take: Callable[[UserState], R | None]) -> tuple[UserState, R] | None:
        """The first user in fairness order for whom `take` finds work (domain limits): users passed
        over keep their place and are not charged a turn."""
        passed: list[tuple[Mapping, UserEntry]] = []
        try:
            while True:
                u = self.pick(service_id)
                if u is None:
                    return None
                got = take(u)
                if got is not None:
                    return u, got
                mapping = u.services
                passed.append((mapping, heapq.heappop(self._users[mapping])))
                self._members[mapping].discard(u.id)
        finally:
            # Back in their mappings' queues, and the mappings' first keys back as they were:
            # only this service's entries moved meanwhile.
            for mapping, entry in passed:
                self._members[mapping].add(entry[3])
                heapq.heappush(self._users[mapping], entry)
            newest = self._newest.get(service_id)
            if newest is not None:
                for mapping in {m for m, _ in passed}:
                    self._lower(service_id, newest, mapping, self._users[mapping][0][:3])

    def forget_service(self, service_id: uuid.UUID) -> None:
        self._heaps.pop(service_id, None)
        self._newest.pop(service_id, None)
