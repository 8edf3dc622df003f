"""Daily quota resets (invariant 7) and SERVICE_QUOTA_EXHAUSTED, on a fake clock moved across 02:00."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from engine.infra.clock import FakeClock
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_service,
    new_engine,
    quiet,
    requests_answered,
    running,
    seed_campaign,
    wait_status,
)

# 02:00 in Beijing is 18:00 UTC.
BEFORE_RESET = datetime(2026, 11, 23, 17, 59, 50, tzinfo=timezone.utc)
RESET = datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)


async def _requests(pool, n: int) -> None:
    await eventually(lambda: requests_answered(pool, n), what=f"{n} requests")


async def _resets(pool, service_id) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM service_status_log WHERE service_id = $1 AND kind = 'reset'",
                                   service_id))


async def test_reset_fires_once_on_time_and_once_after_an_outage(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(BEFORE_RESET)
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=10, daily_quota=3,
                                                         send_interval=1, reset_time="02:00")
        engine, sink = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await _requests(pool, 1)
            for n in (2, 3):
                clock.advance(1)
                await _requests(pool, n)
            await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
            msg = await pool.fetchval("SELECT message FROM campaign_events WHERE campaign_id = $1 AND kind = 'paused'",
                                      campaign)
            assert msg == "当前可用的发信服务额度已用完，请等待第二天恢复"
            assert await _resets(pool, service) == 0
            # Across 02:00: exactly one reset, the campaign resumes by itself.
            clock.set(RESET + timedelta(seconds=5))
            await _requests(pool, 4)
            for n in (5, 6):
                clock.advance(1)
                await _requests(pool, n)
            await quiet(pool, engine)
            await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
            clock.advance(3600)
            await quiet(pool, engine)
            assert await _resets(pool, service) == 1
            row = await pool.fetchrow("SELECT quota_day_start, used_today, remaining_today FROM services")
            assert (row["quota_day_start"], row["used_today"], row["remaining_today"]) == (RESET, 3, 0)
            kinds = [r["kind"] for r in await pool.fetch(
                "SELECT kind FROM campaign_events WHERE campaign_id = $1 ORDER BY id", campaign)]
            assert kinds == ["started", "paused", "resumed", "paused"]
        # The engine is down across the next 02:00: the reset happens at start-up, once.
        clock.set(RESET + timedelta(days=1, hours=1))
        for _ in range(2):
            engine, _ = new_engine(settings, pool, clock, deps.box)
            async with running(engine):
                await eventually(lambda: _has_resets(pool, service, 2), what="the start-up reset")
                await _requests(pool, 7)
                await quiet(pool, engine)
        assert await _resets(pool, service) == 2
        assert await pool.fetchval("SELECT quota_day_start FROM services") == RESET + timedelta(days=1)
        await check_invariants(pool, esp, settings, all_settled=False)


async def _has_resets(pool, service, n: int) -> bool:
    return await _resets(pool, service) >= n


async def test_reset_now_by_hand_clears_the_exhausted_pause(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(BEFORE_RESET - timedelta(hours=5))
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=3, daily_quota=2,
                                                         send_interval=1)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await _requests(pool, 1)
            clock.advance(1)
            await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
            await engine.reset_now(service, None)
            clock.advance(1)
            await wait_status(pool, campaign, "completed")
        assert await _resets(pool, service) == 1
        await check_invariants(pool, esp, settings)


async def test_changing_the_reset_time_reschedules_the_next_reset(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))  # 10:00 in Beijing
    service = await make_service(pool, deps.box, settings, clock.now(), base_url="http://127.0.0.1:9",
                                 reset_time="02:00")
    engine, _ = new_engine(settings, pool, clock, deps.box)
    async with running(engine):
        assert engine.state.services[service].next_reset == RESET  # 02:00 tomorrow, Beijing
        await pool.execute("UPDATE services SET reset_time = '12:00' WHERE id = $1", service)
        await engine.services_changed(service)
        noon = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
        assert engine.state.services[service].next_reset == noon
        clock.set(noon + timedelta(seconds=1))
        # The reset row commits before the hot state moves on to the next day: wait for both.
        tomorrow = noon + timedelta(days=1)

        async def reset_done() -> bool:
            return await _has_resets(pool, service, 1) and engine.state.services[service].next_reset == tomorrow

        await eventually(reset_done, what="the rescheduled reset")
        clock.advance(3600)
        await quiet(pool, engine)
    assert await _resets(pool, service) == 1
    assert await pool.fetchval("SELECT quota_day_start FROM services") == noon
