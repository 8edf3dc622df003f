"""Applies the routing checks to campaigns: automatic pause and resume with a reason."""

from __future__ import annotations

import asyncio
import uuid
from typing import Callable

import asyncpg

from engine.dispatch.hot_state import HotState
from engine.domain.pause_rules import MESSAGES, pause_change, routing_reason
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter


class PauseKeeper:
    """One named task: re-checks the users marked dirty and writes the pause changes in one go."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, state: HotState, events: EventWriter,
                 on_running: Callable[[uuid.UUID], None], write_lock: asyncio.Lock):
        self.pool = pool
        self.clock = clock
        self.state = state
        self.events = events
        self.on_running = on_running
        self.write_lock = write_lock
        self._dirty: set[uuid.UUID] = set()
        self._wake = asyncio.Event()

    def mark(self, user_ids: set[uuid.UUID]) -> None:
        if user_ids:
            self._dirty |= user_ids
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            if not self._dirty:
                await self._wake.wait()
                continue
            users, self._dirty = self._dirty, set()
            try:
                await self.apply(users)
            except BaseException:
                self._dirty |= users  # checked again when the task is restarted
                raise

    async def apply(self, user_ids: set[uuid.UUID]) -> None:
        st = self.state
        ids: list[uuid.UUID] = []
        reasons: list[str | None] = []
        for uid in user_ids:
            u = st.users.get(uid)
            if u is None:
                continue
            services = st.user_services(uid)
            for cid in u.campaigns:
                c = st.campaigns[cid]
                if not c.has_pending:
                    continue  # only campaigns with pending work are routed
                # Routing reasons first: they need someone to act; a closed window only waits.
                auto = routing_reason(c.shortfall, services) or ("OUTSIDE_SEND_WINDOW" if c.window_closed else None)
                change = pause_change(c.status, c.pause_reason, auto)
                if change is not None:
                    ids.append(cid)
                    reasons.append(change.reason)
        if not ids:
            return
        now = self.clock.now()
        async with self.write_lock, self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(Q["engine.set_pause"], ids, reasons)
            evs = []
            for r in rows:
                if r["status"] == "paused":
                    evs.append(CampaignEvent(r["id"], "paused", MESSAGES[r["pause_reason"]],
                                             {"reason": r["pause_reason"]}))
                else:
                    evs.append(CampaignEvent(r["id"], "resumed", "routing condition cleared", {"auto": True}))
            await self.events.write(conn, evs, now)
        for r in rows:
            moved = st.campaigns.get(r["id"])
            if moved is not None:
                moved.status, moved.pause_reason = r["status"], r["pause_reason"]
                if moved.status == "running":
                    self.on_running(moved.user_id)
