"""The alert runtime of one process: the evaluator and the deliverer as two named tasks.

Started beside the engine by the composition root. Transient trouble (a database restart, a
dropped connection) is logged and retried on the next pass; nothing here can stop dispatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg

from engine.alerts.delivery import AlertDeliverer, DeliveryOptions
from engine.alerts.evaluator import AlertEvaluator, AlertSources
from engine.infra.clock import Clock
from engine.infra.secret_box import SecretBox

log = logging.getLogger("edm.alerts")

# What a pass may meet and survive: the next pass tries again.
TRANSIENT = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class AlertOptions:
    evaluate_every: float = 5.0  # seconds between rule evaluations
    delivery: DeliveryOptions = DeliveryOptions()


class AlertRuntime:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, box: SecretBox, tz: ZoneInfo, sources: AlertSources,
                 options: AlertOptions | None = None):
        self.options = options or AlertOptions()
        self.evaluator = AlertEvaluator(pool, clock, sources)
        self.deliverer = AlertDeliverer(pool, clock, box, tz, self.options.delivery)
        self._tasks: list[asyncio.Task[None]] = []
        self._poke = asyncio.Event()

    def poke(self) -> None:
        """Evaluate now rather than at the next tick (e.g. leadership just changed)."""
        self._poke.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._evaluate_loop(), name="alerts.evaluate"),
                       asyncio.create_task(self._deliver_loop(), name="alerts.deliver")]
        for t in self._tasks:
            t.add_done_callback(_report_death)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.deliverer.close()

    async def _evaluate_loop(self) -> None:
        while True:
            self._poke.clear()
            try:
                result = await self.evaluator.evaluate()
                if result.opened:
                    self.deliverer.wake()
            except TRANSIENT as exc:
                log.warning("alert_evaluation_failed error=%s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.options.evaluate_every)

    async def _deliver_loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self.deliverer.run()
            except TRANSIENT as exc:
                log.warning("alert_delivery_loop_failed error=%s", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(30.0, backoff * 2)


def _report_death(task: asyncio.Task[None]) -> None:
    """A programming error ends alerting loudly; dispatch goes on without it."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("alert_task_died task=%s error=%r", task.get_name(), task.exception())
