"""The pick when domain groups are defined: the fairest user with a subtask the service may send
now, passing over (without charging a turn) users whose work is all at its domains' limits.

The dispatcher owns the timers: when nothing is sendable only because of domain limits, it re-arms
the service for `gate.blocked_until` (the moment the earliest block lifts)."""

from __future__ import annotations

import uuid
from datetime import datetime

from engine.dispatch.claims import Claimer
from engine.dispatch.domain_gate import MAX_PARKED, DomainGate
from engine.dispatch.fair_queue import FairQueues
from engine.dispatch.hot_state import CampaignState, Claimed, HotState, UserState
from engine.live.events import CampaignEvent, EventWriter


class LimitedPick:
    def __init__(self, state: HotState, fair: FairQueues, gate: DomainGate, claimer: Claimer, events: EventWriter):
        self.state = state
        self.fair = fair
        self.gate = gate
        self.claimer = claimer
        self.events = events

    def find(self, service_id: uuid.UUID, now: datetime) -> tuple[UserState, CampaignState, Claimed] | None:
        """The user, campaign and subtask this service sends next, or None; after None,
        `gate.blocked_until` says whether (and until when) only domain limits held it back."""
        self.gate.blocked_until = None
        found = self.fair.pick_first(service_id, lambda u: self._take(u, service_id, now))
        if found is None:
            return None
        u, (c, item) = found
        c.domain_wait = False
        return u, c, item

    def _take(self, u: UserState, service_id: uuid.UUID, now: datetime) -> tuple[CampaignState, Claimed] | None:
        """The user's next campaign (after the one it was last served from) with a subtask this
        service may send now."""
        campaigns, cids = self.state.campaigns, u.campaigns
        n = len(cids)
        start = cids.index(u.last_campaign) + 1 if u.last_campaign in cids else 0
        for k in range(n):
            c = campaigns[cids[(start + k) % n]]
            if not c.runnable:
                continue
            item = self.gate.take(c, service_id, now)
            if c.parked_n and c.parked_n < MAX_PARKED:
                self.claimer.want(c)  # blocked domains parked: claim on for the others (bounded)
            if item is not None:
                return c, item
            if not c.domain_wait and not c.buffer and c.parked_n and (c.exhausted or c.parked_n >= MAX_PARKED):
                self._announce_domain_wait(c, now)
        return None

    def _announce_domain_wait(self, c: CampaignState, now: datetime) -> None:
        """Once per stretch: the campaign has work left, all of it waiting for its domains' limits."""
        c.domain_wait = True
        groups = sorted(c.parked)
        self.events.publish_campaign(CampaignEvent(c.id, "domain_wait", "waiting for recipient domain limits: "
                                                   + ", ".join(groups), {"groups": groups,
                                                                          "subtasks": c.parked_n}), now, c.user_id)
