"""The interval runs from each request's real start, measured from the fake ESP's own arrival
times (not the engine's rows): a slow bind before one request, or a restart right after one,
never brings the next request closer than the service's interval."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from engine.dispatch.dispatch_queries import DispatchQueries
from engine.infra.clock import SystemClock
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    new_engine,
    running,
    seed_campaign,
    wait_status,
)

# The slow bind: far above the machine's jitter, far below the interval.
DELAY = 0.4
# Arrival jitter allowed on a busy machine (the bug showed gaps of interval - DELAY).
JITTER = 0.05


class SlowFirstBind(DispatchQueries):
    """The first bind round trip takes DELAY seconds (a slow database, a busy loop)."""

    slow = True

    async def bind(self, ids: list[uuid.UUID], service_ids: list[uuid.UUID], from_addresses: list[str],
                   at: list[datetime]) -> set[uuid.UUID]:
        if self.slow:
            self.slow = False
            await asyncio.sleep(DELAY)
        return await super().bind(ids, service_ids, from_addresses, at)


def arrival_gaps(esp: object) -> list[float]:
    times = sorted(e.t for e in esp.log.entries())  # type: ignore[attr-defined]
    return [b - a for a, b in zip(times, times[1:])]


async def test_a_slow_bind_does_not_shorten_the_next_interval(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = SystemClock()
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=3, send_interval=1)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        engine.dispatcher.queries = SlowFirstBind(pool, engine.events, engine.lease)
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=30)
        await check_invariants(pool, esp, settings)
        gaps = arrival_gaps(esp)
    assert len(gaps) == 2
    assert min(gaps) >= 1 - JITTER, f"arrivals {gaps} s apart on a 1 s service"


async def test_after_a_restart_the_next_request_allows_for_the_bind_to_send_delay(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = SystemClock()
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=2, send_interval=1)
        first, _ = new_engine(settings, pool, clock, deps.box)
        first.dispatcher.queries = SlowFirstBind(pool, first.events, first.lease)
        async with running(first):
            await eventually(lambda: _arrived(esp, 1), what="the first request")
        # The row says the bind's time; the request itself left DELAY s later.
        second, _ = new_engine(settings, pool, clock, deps.box)
        async with running(second):
            await wait_status(pool, campaign, "completed", timeout=30)
        await check_invariants(pool, esp, settings)
        gaps = arrival_gaps(esp)
    assert len(gaps) == 1
    assert gaps[0] >= 1 - JITTER, f"arrivals {gaps[0]:.3f} s apart across a restart on a 1 s service"


async def _arrived(esp: object, n: int) -> bool:
    return len(esp.log.entries()) >= n  # type: ignore[attr-defined]




class SteppedClock(SystemClock):
    """Real time whose wall reading an NTP step can move; its monotonic reading never jumps."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


async def test_a_wall_clock_step_back_neither_stalls_nor_shortens_the_interval(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = SteppedClock()
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=3, send_interval=1)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await eventually(lambda: _arrived(esp, 1), what="the first request")
            clock.offset = -timedelta(minutes=30)  # the wall clock is stepped back half an hour
            await wait_status(pool, campaign, "completed", timeout=20)
        gaps = arrival_gaps(esp)
    assert len(gaps) == 2
    assert min(gaps) >= 1 - JITTER and max(gaps) < 10, f"arrivals {gaps} s apart on a 1 s service"
