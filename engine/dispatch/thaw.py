"""Timed unfreezes, off the dispatch path: a service the engine froze (failures in a row, the
reputation guard) with an `unfreeze_after` comes due at `frozen_until`. With
`probe_before_unfreeze`, its credentials are probed first (engine/probes, sends nothing): it is
unfrozen only if the probe passes, else it stays frozen with the probe's error as its reason and
is probed again after a backoff (domain/thaw_rules.py). One named task; the probe runs outside
the write lock, so dispatch never waits on a provider here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

import asyncpg

from engine.dispatch.waiting import wait_until
from engine.domain.thaw_rules import probe_backoff, probe_reason
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.infra.secret_box import SecretBox
from engine.live.events import EventWriter
from engine.probes.service_probe import Verdict, probe_credentials

log = logging.getLogger("edm.engine.thaw")

BATCH = 50
Probe = Callable[[str, Mapping[str, Any], "str | None", float], Awaitable[tuple[Verdict, str]]]


class Thawer:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, box: SecretBox, events: EventWriter,
                 write_lock: asyncio.Lock, *, on_thawed: Callable[[uuid.UUID], Awaitable[None]],
                 on_kept: Callable[[uuid.UUID, str], Awaitable[None]], poll_seconds: float = 1.0,
                 probe_timeout: float = 10.0, probe: Probe = probe_credentials):
        self.pool = pool
        self.clock = clock
        self.box = box
        self.events = events
        # The engine's one write lock: the row and the hot state change together under it.
        self.write_lock = write_lock
        self.on_thawed = on_thawed
        self.on_kept = on_kept
        # A real-time ceiling on each wait: freezes written since (by the settler, or the guard
        # in an API process) are seen within it.
        self.poll_seconds = poll_seconds
        self.probe_timeout = probe_timeout
        self.probe = probe
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            due = await self.pool.fetch(Q["thaw.due"], self.clock.now(), BATCH)
            if due:
                # Each to its end before an error restarts the task (nothing left running behind it).
                done = await asyncio.gather(*(self._come_due(r) for r in due), return_exceptions=True)
                for outcome in done:
                    if isinstance(outcome, BaseException):
                        raise outcome
                continue
            nxt: datetime | None = await self.pool.fetchval(Q["thaw.next_due"])
            await wait_until(self.clock, nxt, self._wake, self.poll_seconds)

    async def _come_due(self, r: asyncpg.Record) -> None:
        detail = None
        if r["probe_before_unfreeze"]:
            verdict, detail = await self._probe(r)
            if verdict != "ok":
                await self._keep(r, verdict, detail)
                return
        now = self.clock.now()
        message = "unfrozen: its timed freeze ended" + (f" and the credentials probe passed ({detail})"
                                                        if detail is not None else "")
        data = {"timed": True, "probe": detail}
        async with self.write_lock:
            thawed = await self.pool.fetchval(Q["thaw.thaw"], r["id"], r["frozen_until"], message, data, now)
            if thawed is not None:
                await self.on_thawed(r["id"])  # the hot state moves with the row
        if thawed is not None:
            log.info("service_thawed service=%s probe=%s", r["name"], detail)
            self.events.service(r["id"], "unfrozen", message, now, data)

    async def _probe(self, r: asyncpg.Record) -> tuple[Verdict, str]:
        try:
            return await self.probe(r["provider"], self.box.open(r["credentials"]), r["base_url"],
                                    self.probe_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe bug keeps the service frozen; it never stops the engine
            log.exception("unfreeze_probe_crashed service=%s", r["name"])
            return "error", type(exc).__name__

    async def _keep(self, r: asyncpg.Record, verdict: Verdict, detail: str) -> None:
        now = self.clock.now()
        failures = r["unfreeze_probes"] + 1
        next_at = now + probe_backoff(failures)
        reason = probe_reason(verdict, detail)
        data = {"verdict": verdict, "detail": detail, "failed_probes": failures, "next_probe_at": next_at.isoformat()}
        async with self.write_lock:
            kept = await self.pool.fetchval(Q["thaw.probe_failed"], r["id"], r["frozen_until"], reason, next_at,
                                            data, now)
            if kept is not None:
                await self.on_kept(r["id"], reason)
        if kept is not None:
            log.warning("unfreeze_probe_failed service=%s verdict=%s detail=%s next=%s", r["name"], verdict, detail,
                        next_at.isoformat())
            self.events.service(r["id"], "probe_failed", f"{reason}; stays frozen, next probe at {next_at.isoformat()}",
                                now, data)
            self.events.alert(r["id"], "service_frozen", f"{r['name']}: {reason}", now)
