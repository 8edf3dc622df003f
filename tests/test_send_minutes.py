"""The per-minute send counters: counted where results settle, written behind in batches, and
equal to what the subtasks and the fake ESP's request log say."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import asyncpg
import pytest

from edm.fake_esp.config import FakeEspConfig, Knobs
from engine.infra.clock import FakeClock
from engine.infra.scaled_clock import ScaledClock
from engine.live.send_minutes import SendMinutes
from tests.engine_support import (
    check_invariants,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    running,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, 50, tzinfo=timezone.utc)


async def test_a_run_writes_the_counts_of_its_settled_results_per_service_and_minute(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)  # a simulated minute every 1.2 s: the run spans several
    config = FakeEspConfig(default=Knobs(error_rate=0.2, throttle_rate=0.1), seed=3)
    async with fake_esp(config) as (url, esp):
        user = await make_user(pool, quota=100)
        s1 = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        s2 = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=2)
        await map_user(pool, user, [s1, s2])
        await make_contacts(pool, user, 60)
        campaign = await make_campaign(pool, user, planned=60)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        await check_invariants(pool, esp, settings)
    minutes = {(r["minute"], r["service_id"]): (r["sent"], r["failed"]) for r in await pool.fetch(
        "SELECT minute, service_id, sent, failed FROM send_minutes WHERE campaign_id = $1 AND user_id = $2",
        campaign, user)}
    settled = {(r["minute"], r["service_id"]): (r["sent"], r["failed"]) for r in await pool.fetch(
        "SELECT date_trunc('minute', settled_at) AS minute, service_id, count(*) FILTER (WHERE status = 'sent') AS sent,"
        " count(*) FILTER (WHERE status = 'failed') AS failed FROM subtasks WHERE campaign_id = $1 GROUP BY 1, 2",
        campaign)}
    assert minutes == settled
    assert len({m for m, _ in minutes}) >= 2 and {s for _, s in minutes} == {s1, s2}
    # Throttled requests were no sends: the counters hold exactly what the provider sent or failed.
    outcomes = [e.outcome for e in esp.log.entries()]
    assert "throttled" in outcomes and "failed" in outcomes
    assert sum(a + b for a, b in minutes.values()) == outcomes.count("sent") + outcomes.count("failed") == 60


async def test_counts_survive_a_failed_write_and_go_with_the_next(deps, database_url: str) -> None:
    clock = FakeClock(START)
    broken = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await broken.close()
    recorder = SendMinutes(broken, clock)
    service, campaign, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recorder.record([(START, service, campaign, user, "sent"), (START, service, campaign, user, "failed"),
                     (START, service, campaign, user, "throttled"), (START, service, campaign, user, "not_sent")])
    with pytest.raises(asyncpg.InterfaceError):
        await recorder.flush()
    recorder.record([(START, service, campaign, user, "sent")])
    recorder.pool = deps.pool
    await recorder.flush()
    row = await deps.pool.fetchrow("SELECT minute, sent, failed FROM send_minutes WHERE campaign_id = $1", campaign)
    assert (row["minute"], row["sent"], row["failed"]) == (datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc), 2, 1)
    # Additive: a later flush of the same minute adds to the row.
    recorder.record([(START, service, campaign, user, "failed")])
    await recorder.flush()
    assert await deps.pool.fetchval("SELECT failed FROM send_minutes WHERE campaign_id = $1", campaign) == 2


async def test_results_out_of_order_across_minutes_count_in_their_own_minute(deps) -> None:
    """A flush's results are mostly in one minute, not always in order: each counts in its own."""
    recorder = SendMinutes(deps.pool, FakeClock(START))
    service, campaign, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = [datetime(2026, 11, 23, 4, m, s, us, tzinfo=timezone.utc)
          for m, s, us in [(0, 59, 999_999), (1, 0, 0), (0, 0, 0), (1, 59, 999_999), (2, 0, 1), (0, 30, 0)]]
    recorder.record([(a, service, campaign, user, "sent") for a in at])
    await recorder.flush()
    rows = await deps.pool.fetch("SELECT minute, sent FROM send_minutes WHERE campaign_id = $1 ORDER BY minute",
                                 campaign)
    assert [(r["minute"].minute, r["sent"]) for r in rows] == [(0, 3), (1, 2), (2, 1)]
