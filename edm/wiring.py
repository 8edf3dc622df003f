"""Puts the engine, its event publisher and its metrics into the running process."""

from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator

from api.deps import Deps
from engine.alerts.runtime import AlertRuntime
from engine.dispatch.leader import Engine
from engine.infra.gc_policy import tune_for_dispatch
from engine.infra.loop_lag import LoopLagMonitor
from engine.live.event_stream import RedisStreamPublisher
from engine.live.metrics import EngineMetrics
from engine.providers import EngageLabTransport, ProviderFactory

log = logging.getLogger("edm.wiring")


@contextlib.asynccontextmanager
async def running_engine(d: Deps) -> AsyncIterator[Engine]:
    """Start the event publisher and the engine (leader, or standby behind another process)."""
    tune_for_dispatch()  # process-wide: the engine's hot state is large and long-lived
    metrics = EngineMetrics()
    publisher = RedisStreamPublisher(d.redis, clock=d.clock)
    metrics.watch_event_stream(publisher)
    d.publisher = publisher
    d.metrics = metrics
    lag = LoopLagMonitor(metrics.loop_lagged)
    lag.start()
    publisher.start()
    providers = ProviderFactory(EngageLabTransport(pool_limit=d.settings.http_pool_size))
    engine = Engine(d.settings, d.pool, d.clock, providers, d.box, publisher, metrics=metrics)
    d.engine = engine
    await engine.start()
    alerts = AlertRuntime(d.pool, d.clock, d.box, d.settings.tz, _AlertSources(engine, publisher))
    alerts.start()
    try:
        yield engine
    finally:
        d.engine = None
        await alerts.stop()
        await engine.stop()
        await providers.close()
        await publisher.stop(timeout=5)
        await lag.stop()


class _AlertSources:
    """What the alert evaluator asks of this process: does it lead, and what the publisher dropped."""

    def __init__(self, engine: Engine, publisher: RedisStreamPublisher):
        self.engine = engine
        self.publisher = publisher

    def is_leader(self) -> bool:
        return self.engine.is_leader

    def events_dropped(self) -> int | None:
        return self.publisher.dropped

    def leader_epoch(self) -> int | None:
        return self.engine.lease.epoch
