"""Soak (make soak): a long, noisy run — three users, six services, throttling and errors from the
fake ESP, engine crashes and restarts along the way — and the invariants still hold at the end."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone

import pytest

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    settled_count,
)

pytestmark = pytest.mark.soak
START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


@pytest.mark.timeout(900)
async def test_noisy_run_with_crashes_keeps_every_invariant(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=40)
    noisy = FakeEspConfig(default=Knobs(error_rate=0.02, throttle_rate=0.05, retry_after=1.0), seed=11)
    async with fake_esp(noisy) as (url, esp):
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=i,
                                       daily_quota=20000) for i in (1, 1, 2, 2, 3, 5)]
        campaigns, total = [], 0
        for k in range(3):
            user = await make_user(pool, quota=2000)
            await map_user(pool, user, services[k:k + 4])
            await make_contacts(pool, user, 2000)
            campaigns.append(await make_campaign(pool, user, planned=2000, templates=2))
            total += 2000
        rng = random.Random(5)
        for _ in range(8):
            engine, _ = new_engine(settings, pool, clock, deps.box)
            await engine.start()
            await engine.wait_leader(10)
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            await engine.abort()  # a crash: no clean stop, `sending` rows may be left behind
            await engine.providers.close()  # type: ignore[attr-defined]
        engine, _ = new_engine(settings, pool, clock, deps.box)
        await engine.start()
        await engine.wait_leader(10)
        try:
            async def all_settled() -> bool:
                return await settled_count(pool) >= total
            await eventually(all_settled, timeout=600, what="every subtask settled")
        finally:
            await engine.stop()
            await engine.providers.close()  # type: ignore[attr-defined]
        figures = await check_invariants(pool, esp, settings)
    assert figures["requests"] > 0
    statuses = {r["status"] for r in await pool.fetch("SELECT status FROM campaigns WHERE id = ANY($1)", campaigns)}
    assert statuses == {"completed"}

