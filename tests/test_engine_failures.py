"""Provider failures (invariant 10) and throttling: freeze after 10 in a row, unfreeze resumes;
throttled requests go back to pending and extend the service's freeze."""

from __future__ import annotations

from datetime import datetime, timezone

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import check_invariants, fake_esp, new_engine, quiet, running, seed_campaign, wait_status

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_ten_consecutive_failures_freeze_and_unfreeze_resumes(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=20)
    config = FakeEspConfig(users={"broken": Knobs(fail_all=True)})
    async with fake_esp(config) as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=15,
                                                         api_user="broken")
        engine, sink = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE")
            row = await pool.fetchrow("SELECT abnormal_frozen, abnormal_reason, consecutive_failures FROM services")
            assert row["abnormal_frozen"] and row["consecutive_failures"] == 10
            assert "10 consecutive failures" in row["abnormal_reason"]
            assert await pool.fetchval("SELECT count(*) FROM service_status_log WHERE kind = 'frozen'") == 1
            assert "service_frozen" in sink.kinds("alert")
            failed = await pool.fetchval("SELECT failed_count FROM campaigns WHERE id = $1", campaign)
            assert failed == 10 and esp.log.counts["failed"] == 10
            # Fixed at the provider; an administrator lifts the freeze and the campaign resumes.
            esp.config.users.clear()
            await engine.unfreeze(service, None)
            await wait_status(pool, campaign, "completed")
        assert await pool.fetchval("SELECT count(*) FROM service_status_log WHERE kind = 'unfrozen'") == 1
        row = await pool.fetchrow("SELECT sent_count, failed_count FROM campaigns WHERE id = $1", campaign)
        assert (row["sent_count"], row["failed_count"]) == (5, 10)
        # A failed send is not refunded.
        assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 0
        await check_invariants(pool, esp, settings)


async def test_a_hanging_provider_freezes_its_service_after_ten_requests_not_forty(deps) -> None:
    """Answers (failures) take 60 intervals: without a bound on open requests, 60 would be sent
    before the first failure came back. With it, the 10th failure in request order freezes the
    service with at most MAX_IN_FLIGHT - 1 more requests made."""
    from engine.dispatch.dispatcher import MAX_IN_FLIGHT

    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=20)  # 1 s interval = 50 ms real
    config = FakeEspConfig(users={"hanging": Knobs(fail_all=True, latency_ms=3000)})
    async with fake_esp(config) as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=40,
                                                         api_user="hanging")
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE", timeout=60)
            await quiet(pool, engine)
        requests = len(esp.log.entries())
        assert 10 <= requests <= 10 + MAX_IN_FLIGHT - 1, f"{requests} requests before the freeze"
        row = await pool.fetchrow("SELECT abnormal_frozen, consecutive_failures FROM services")
        assert row["abnormal_frozen"] and row["consecutive_failures"] == requests
        await check_invariants(pool, esp, settings, all_settled=False)


async def test_two_services_on_one_pooled_connection_take_turns_and_nothing_fails(deps) -> None:
    """One pooled connection for two services whose provider answers in 0.5 s: the engine binds
    one request at a time (a request that would wait past the pool limit is never bound, so none
    goes back unsent); nothing fails, nothing counts twice against a quota."""
    from engine.providers import EngageLabTransport, ProviderFactory

    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=10)
    transport = EngageLabTransport(pool_limit=1, pool_wait=0.1, total_timeout=5)
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=500))) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=6, services=2)
        engine, _ = new_engine(settings, pool, clock, deps.box, providers=ProviderFactory(transport))
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=60)
        assert engine.dispatcher.requests == 6, "a bind went back unsent"
        assert transport.queued == 0
        row = await pool.fetchrow("SELECT sent_count, failed_count FROM campaigns WHERE id = $1", campaign)
        assert (row["sent_count"], row["failed_count"]) == (6, 0)
        assert len(esp.log.entries()) == 6
        assert await pool.fetchval("SELECT sum(used_today) FROM services") == 6
        assert await pool.fetchval("SELECT max(consecutive_failures) FROM services") == 0
        await check_invariants(pool, esp, settings)


async def test_throttled_requests_go_back_to_pending_and_are_sent_later(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    config = FakeEspConfig(default=Knobs(throttle_rate=0.3, retry_after=2.0), seed=7)
    async with fake_esp(config) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=30, services=2)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        throttled = esp.log.counts["throttled"]
        assert throttled > 0
        assert esp.log.counts["sent"] == 30
        assert await pool.fetchval("SELECT count(*) FROM service_status_log WHERE kind = 'throttled'") == throttled
        # Throttled requests do not count against the daily quota.
        assert await pool.fetchval("SELECT sum(used_today) FROM services") == 30
        assert await pool.fetchval("SELECT sent_count FROM campaigns") == 30
        # No subtask was sent twice: each was requested until it got through, and once it did, never again.
        delivered = [e.request_id for e in esp.log.entries() if e.outcome == "sent"]
        assert len(delivered) == len(set(delivered)) == 30
        await check_invariants(pool, None, settings)
