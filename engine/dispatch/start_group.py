"""Fairness from the first round: users who become runnable together start level.

Campaigns started in the same pass of the due starter (or loaded together at start-up) are
claimed one after another. Were each user offered to its services as soon as its own claim came
back, the first one claimed would take every free service before the others had work in memory,
and stay ahead for the whole run (3 services, 3 users: `AAABCABC...`). So the users of such a
group are held back until every campaign of the group has been claimed once, then offered all
at once: the services' first picks see them level (same `last_served`, oldest campaign first).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Iterable, Protocol

from engine.dispatch.hot_state import HotState

# Real seconds a group waits at most for its claims (a cancelled campaign is never claimed).
MAX_WAIT = 1.0


class Holder(Protocol):
    def hold(self, users: set[uuid.UUID]) -> None: ...

    def release(self, users: set[uuid.UUID]) -> None: ...


class StartGroup:
    def __init__(self, state: HotState, holder: Holder, *, max_wait: float = MAX_WAIT):
        self.state = state
        self.holder = holder
        self.max_wait = max_wait
        self._campaigns: set[uuid.UUID] = set()
        self._users: set[uuid.UUID] = set()
        self._timer: asyncio.TimerHandle | None = None

    def begin(self, campaigns: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """(campaign, user) pairs about to be claimed. A user who already has runnable work is
        not held: it is running, not starting."""
        for campaign_id, user_id in campaigns:
            u = self.state.users.get(user_id)
            if u is not None and self.state.has_runnable(u) and user_id not in self._users:
                continue
            self._campaigns.add(campaign_id)
            self._users.add(user_id)
        if not self._campaigns:
            return
        self.holder.hold(set(self._users))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_wait, self.release)

    def filled(self, campaign_id: uuid.UUID) -> None:
        """The campaign's first claim came back (with work or not)."""
        if campaign_id in self._campaigns:
            self._campaigns.discard(campaign_id)
            if not self._campaigns:
                self.release()

    def release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        users, self._users = self._users, set()
        self._campaigns.clear()
        self.holder.release(users)
