"""The leader's LISTEN connection: commands other processes send it with NOTIFY (a standby's
API, `edm quota`). A connection lost (a PostgreSQL restart) is opened again with back-off."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import asyncpg

from engine.infra.db import is_transient

log = logging.getLogger("edm.engine.notices")


class NoticeListener:
    def __init__(self, pool: asyncpg.Pool, channel: str, on_payload: Callable[[str], None]):
        self.pool = pool
        self.channel = channel
        self.on_payload = on_payload

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self.on_payload(payload)

    async def run(self) -> None:
        failures = 0
        while True:
            lost = asyncio.Event()
            try:
                conn = await self.pool.acquire()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                await asyncio.sleep(min(1.0, 0.1 * 2 ** min(failures, 4)))
                continue
            try:
                conn.add_termination_listener(lambda c: lost.set())
                await conn.add_listener(self.channel, self._notified)
                if failures:
                    log.info("notices_listening_again after=%d attempts", failures)
                failures = 0
                await lost.wait()
                log.warning("notices_connection_lost: listening again")
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
            finally:
                try:
                    await asyncio.shield(self._release(conn))
                except Exception:
                    pass

    async def _release(self, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        if not conn.is_closed():
            await conn.remove_listener(self.channel, self._notified)
        await self.pool.release(conn)
