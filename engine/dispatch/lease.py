"""Leadership as a lease with fencing.

One `engine_leader` row holds the leader's epoch and the lease's expiry (database time). The
leader renews it every `renew_every` seconds; every bind carries the epoch and the database
refuses it once another engine took the lease (a new epoch) or the lease expired. Locally the
leader counts its lease on the monotonic clock from the moment it *sent* the last successful
renewal, minus a margin, so it stops binding before the database would refuse it: a leader that
was paused (SIGSTOP), cut off or starved never binds after its lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import datetime

import asyncpg

from engine.domain.errors import EdmError
from engine.infra.db import is_transient
from engine.infra.queries import Q

log = logging.getLogger("edm.engine.lease")


class LeaseLost(EdmError):
    """Another engine holds the lease now: this one must stop dispatching and step down."""

    code = "LEASE_LOST"


def engine_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    def __init__(self, pool: asyncpg.Pool, holder: str, *, seconds: float = 10.0, renew_every: float = 2.0):
        assert renew_every * 2 < seconds, "the lease must outlive two renewals"
        self.pool = pool
        self.holder = holder
        self.seconds = seconds
        self.renew_every = renew_every
        # Stop binding this long before the lease would end: covers a bind already on its way.
        self.margin = min(renew_every, seconds / 4)
        self.epoch: int | None = None
        self.since: datetime | None = None
        self._valid_until = 0.0
        self._renewed = asyncio.Event()

    def held(self) -> bool:
        """May this engine bind now (its lease is known to be live, with the margin to spare)?"""
        return self.epoch is not None and time.monotonic() < self._valid_until

    async def wait_held(self) -> None:
        """Until the lease is live again (renewed); raises `LeaseLost` once it is gone for good."""
        while not self.held():
            if self.epoch is None:
                raise LeaseLost("this engine no longer holds the lease")
            self._renewed.clear()
            await self._renewed.wait()

    async def try_acquire(self) -> bool:
        t0 = time.monotonic()
        row = await self.pool.fetchrow(Q["leader.acquire"], self.holder, self.seconds, timeout=self.seconds / 2)
        if row is None:
            return False
        self.epoch, self.since = row["epoch"], row["since"]
        self._valid_until = t0 + self.seconds - self.margin
        self._renewed.set()
        log.info("lease_acquired holder=%s epoch=%d", self.holder, self.epoch)
        return True

    async def acquire(self) -> None:
        """Until this engine holds the lease (a standby polls at the renewal pace)."""
        while True:
            try:
                if await self.try_acquire():
                    return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("lease_acquire_retry error=%r", exc)
            await asyncio.sleep(self.renew_every)

    async def keep(self) -> None:
        """The renewal task; raises `LeaseLost` when another engine took over."""
        assert self.epoch is not None
        failing = False
        while True:
            await asyncio.sleep(min(self.renew_every, 0.5) if failing else self.renew_every)
            t0 = time.monotonic()
            try:
                # Bounded: a half-open connection must not hold the renewal (and so dispatch) forever.
                row = await self.pool.fetchrow(Q["leader.renew"], self.epoch, self.holder, self.seconds,
                                               timeout=self.seconds / 2)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if not failing:
                    log.warning("lease_renew_failing error=%r: dispatch stops when the lease ends", exc)
                failing = True
                continue
            if row is None:
                log.error("lease_lost holder=%s epoch=%d: another engine leads", self.holder, self.epoch)
                raise LeaseLost("another engine took the leader lease")
            if failing:
                log.info("lease_renewed_again epoch=%d", self.epoch)
            failing = False
            self._valid_until = t0 + self.seconds - self.margin
            self._renewed.set()

    async def release(self) -> None:
        epoch, self.epoch, self._valid_until = self.epoch, None, 0.0
        self._renewed.set()
        if epoch is not None:
            try:
                await self.pool.execute(Q["leader.release"], epoch, self.holder)
            except Exception as exc:  # the lease simply runs out
                log.warning("lease_release_failed error=%r", exc)

    def forget(self) -> None:
        """Stepping down without a write (the lease is someone else's now)."""
        self.epoch, self._valid_until = None, 0.0
        self._renewed.set()
