"""Live service events and names on events: interval, quota used, throttled, enabled/disabled, and
progress events that carry the campaign's name (what the dashboard's event log labels and filters)."""

from __future__ import annotations

from datetime import datetime, timezone

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import (
    eventually,
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

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_service_events_carry_names_and_cover_every_change(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    config = FakeEspConfig(default=Knobs(throttle_rate=0.3, retry_after=1.0), seed=3)
    async with fake_esp(config) as (url, esp):
        user = await make_user(pool, quota=20)
        # A 5 s interval announces each wait; a daily quota of 4 runs out.
        slow = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=5,
                                  daily_quota=4, name="slow-svc")
        await map_user(pool, user, [slow])
        await make_contacts(pool, user, 6)
        campaign = await make_campaign(pool, user, planned=6)
        await pool.execute("UPDATE campaigns SET name = 'Spring sale' WHERE id = $1", campaign)
        engine, sink = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
            await pool.execute("UPDATE services SET enabled = false WHERE id = $1", slow)
            await engine.services_changed(slow)

            async def disabled() -> bool:
                return "disabled" in sink.kinds("service")
            await eventually(disabled, what="a service.disabled event")
            await pool.execute("UPDATE services SET enabled = true WHERE id = $1", slow)
            await engine.services_changed(slow)
            await engine.services_changed(slow)  # nothing changed this time: no second event

            async def enabled() -> bool:
                return "enabled" in sink.kinds("service")
            await eventually(enabled, what="a service.enabled event")
        assert esp.log.counts["throttled"] > 0
    service_events = [e for e in sink.events if e.subject == "service"]
    kinds = [e.kind for e in service_events]
    assert {"interval_started", "quota_used", "throttled", "disabled", "enabled"} <= set(kinds)
    assert kinds.count("enabled") == 1 and kinds.count("disabled") == 1 and kinds.count("quota_used") == 1
    assert all(e.data["service"] == "slow-svc" and e.message.startswith("slow-svc: ") for e in service_events)
    waits = [e for e in service_events if e.kind == "interval_started"]
    assert waits and waits[0].data["seconds"] == 5 and waits[0].message == "slow-svc: waits 5 s"
    progress = [e for e in sink.events if e.kind == "progress"]
    assert progress and all(e.data["campaign"] == "Spring sale" for e in progress)
    assert progress[0].message.startswith("Spring sale: +")
    campaign_events = [e for e in sink.events if e.subject == "campaign" and e.kind != "progress"]
    assert campaign_events and all(e.data.get("campaign") == "Spring sale" for e in campaign_events)


async def test_a_short_interval_does_not_flood_the_stream(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, _):
        user = await make_user(pool, quota=5)
        fast = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        await map_user(pool, user, [fast])
        await make_contacts(pool, user, 5)
        campaign = await make_campaign(pool, user, planned=5)
        engine, sink = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
    assert "interval_started" not in sink.kinds("service")
