"""The owner's quota ledger ends where a recount of the subtasks says (DESIGN.md section 3), after
a run with suppressions mid-campaign, a throttled request settling across a cancel, and the cancel."""

from __future__ import annotations

from datetime import datetime, timezone

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.clock import FakeClock
from engine.store.suppression import SuppressionStore
from tests.engine_support import (
    check_invariants,
    check_quota_recount,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    quiet,
    requests_answered,
    running,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_quota_counters_equal_the_recount_after_suppressions_a_throttle_and_a_cancel(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(START)
    async with fake_esp(FakeEspConfig()) as (url, esp):
        user = await make_user(pool, quota=50)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, api_user="acme")
        await map_user(pool, user, [service])
        emails = sorted(e.lower() for e in await make_contacts(pool, user, 12))
        campaign = await make_campaign(pool, user, planned=12)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            for n in (1, 2, 3):  # three sends, one per interval
                await eventually(lambda: requests_answered(pool, n), what=f"{n} requests")
                clock.advance(1)
            await eventually(lambda: requests_answered(pool, 4), what="4 requests")
            # Two recipients not yet sent are suppressed mid-campaign: cancelled and refunded.
            store = SuppressionStore(pool, engine.events)
            for email in emails[-2:]:
                added, refunded = await store.add(user, email, "asked by phone", user, clock.now())
                assert added and refunded == {user}
                await engine.quota_changed(user)
            # The provider throttles the next request slowly; the campaign is cancelled meanwhile,
            # so the throttled subtask settles as cancelled (the throttled-refund path).
            esp.config.users["acme"] = Knobs(throttle_rate=1.0, latency_ms=1500)
            clock.advance(1)
            await eventually(lambda: _throttled_in_flight(pool, esp), what="a throttled request in flight")
            await engine.cancel_campaign(campaign, None)
            await wait_status(pool, campaign, "cancelled")
            await quiet(pool, engine)
        row = await pool.fetchrow("SELECT sent_count, cancelled_count FROM campaigns WHERE id = $1", campaign)
        assert (row["sent_count"], row["cancelled_count"]) == (4, 8)
        await check_quota_recount(pool)
        assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 50 - 4
        await check_invariants(pool, esp, settings)


async def _throttled_in_flight(pool, esp) -> bool:  # type: ignore[no-untyped-def]
    return any(e.outcome == "throttled" for e in esp.log.entries()) and \
        await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'sending'") == 1
