"""Whole runs through the fake ESP over real HTTP: a campaign goes from due to completed, and the
invariants hold on the request log and the database."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from engine.infra.clock import FakeClock
from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import (
    campaign_status,
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    request_count,
    requests_answered,
    running,
    seed_campaign,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_campaign_runs_to_completion_through_the_fake_esp(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=100)
        s1 = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        s2 = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=2)
        await map_user(pool, user, [s1, s2])
        await make_contacts(pool, user, 30)
        campaign = await make_campaign(pool, user, planned=40, templates=2)
        engine, sink = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        figures = await check_invariants(pool, esp, settings)
    assert figures["requests"] == 30
    row = await pool.fetchrow("SELECT total, sent_count, reserved FROM campaigns WHERE id = $1", campaign)
    assert (row["total"], row["sent_count"], row["reserved"]) == (30, 30, 30)
    # 40 reserved, 30 recipients: 10 refunded.
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 70
    spread = await pool.fetch("SELECT template_id, count(*) AS n FROM subtasks GROUP BY 1")
    assert sorted(r["n"] for r in spread) == [15, 15]
    froms = {e.from_ for e in esp.log.entries()}
    assert all(f.endswith("@mail.example.com") for f in froms)
    kinds = [r["kind"] for r in await pool.fetch(
        "SELECT kind FROM campaign_events WHERE campaign_id = $1 ORDER BY id", campaign)]
    assert kinds == ["started", "completed"]
    # Both services were used, each within its interval (checked above) - the faster one more.
    used = dict(await pool.fetch("SELECT service_id, count(*) FROM subtasks GROUP BY 1"))
    assert used[s1] > used[s2] > 0


async def test_a_scheduled_campaign_starts_at_its_time_not_before(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(START)
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=2,
                                                         scheduled_at=START + timedelta(minutes=10))
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            clock.advance(599)
            # The due task sleeps on the clock until the campaign's time; give it a chance to misfire.
            await asyncio.sleep(0.2)
            assert (await campaign_status(pool, campaign))[0] == "pending"
            clock.advance(1)
            await wait_status(pool, campaign, "running", timeout=5)
            started = await pool.fetchval("SELECT started_at FROM campaigns WHERE id = $1", campaign)
            assert started == START + timedelta(minutes=10)

            async def first_request() -> bool:
                return await request_count(pool) == 1 and await requests_answered(pool, 1)
            await eventually(first_request, what="the first request")
            clock.advance(1)
            await wait_status(pool, campaign, "completed")
        await check_invariants(pool, esp, settings)


async def test_a_recipient_whose_email_cannot_render_fails_without_a_request(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=3)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 3)
        # Compiles (and passes the save-time trial), but fails for contacts without `n`.
        campaign = await make_campaign(pool, user, planned=3, html="<p>{{ 10 // n }}</p>")
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        assert esp.log.entries() == []
        await check_invariants(pool, esp, settings)
    rows = await pool.fetch("SELECT status, error, service_id FROM subtasks")
    assert all(r["status"] == "failed" and r["error"].startswith("TEMPLATE_ERROR") and r["service_id"] is None
               for r in rows)
    assert await pool.fetchval("SELECT used_today FROM services") == 0
    # Never sent, so never paid for: the three units are back with the user.
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 3
    row = await pool.fetchrow("SELECT reserved, released FROM campaigns WHERE id = $1", campaign)
    assert (row["reserved"], row["released"]) == (0, 3)


async def test_a_hostile_loop_bound_from_a_contact_fails_that_recipient_and_the_others_go_on(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=3)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url)
        await map_user(pool, user, [service])
        emails = await make_contacts(pool, user, 3)
        await pool.execute("UPDATE contacts SET fields = '{\"n\": 10000}' WHERE email = $1", emails[1])
        # Passes the save (the sample contact has no `n`); 10^8 iterations for the second contact.
        hostile = "{% for a in range(n|default(1)) %}{% for b in range(n|default(1)) %}{% endfor %}{% endfor %}"
        campaign = await make_campaign(pool, user, planned=3, html=hostile)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        assert sorted(to for e in esp.log.entries() for to in e.to or []) == sorted([emails[0], emails[2]])
        await check_invariants(pool, esp, settings)
    failed = await pool.fetch("SELECT email, error FROM subtasks WHERE status = 'failed'")
    assert [r["email"] for r in failed] == [emails[1]] and failed[0]["error"].startswith("TEMPLATE_ERROR")
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 1


async def test_the_engine_feeds_the_metrics(deps) -> None:
    from engine.dispatch.leader import Engine, EngineOptions
    from engine.live.events import MemorySink
    from engine.live.metrics import EngineMetrics
    from engine.providers.factory import ProviderFactory

    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    metrics = EngineMetrics()
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=3)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, name="metered")
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 3)
        campaign = await make_campaign(pool, user, planned=3)
        engine = Engine(settings, pool, clock, ProviderFactory(), deps.box, MemorySink(),
                        EngineOptions(settle_delay=0.005), metrics=metrics)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
    text = metrics.render().decode()
    assert 'edm_sends_total{outcome="sent",service="metered"} 3.0' in text
    assert "edm_dispatch_lateness_seconds_count 3.0" in text
    assert "edm_frozen_services 0.0" in text
