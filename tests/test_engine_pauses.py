"""Routing pauses (invariant 8): each reason appears with its exact message and clears by itself
when its condition clears; a USER pause stays until a person resumes it; start failures."""

from __future__ import annotations

from datetime import datetime, timezone

from engine.infra.scaled_clock import ScaledClock
from engine.store import quota_ledger
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

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def _events(pool, campaign) -> list[tuple[str, str]]:
    return [(r["kind"], r["message"]) for r in await pool.fetch(
        "SELECT kind, message FROM campaign_events WHERE campaign_id = $1 ORDER BY id", campaign)]


async def test_no_user_quota_pauses_until_quota_is_added(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=5)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 8)
        # Saved for 5, but 8 recipients at the start and nothing left to charge the 3 extra.
        campaign = await make_campaign(pool, user, planned=5)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "paused", "NO_USER_QUOTA")
            assert ("paused", "当前没有发信额度") in await _events(pool, campaign)
            assert await pool.fetchval("SELECT count(*) FROM subtasks WHERE status <> 'pending'") == 0
            async with pool.acquire() as conn, conn.transaction():
                await quota_ledger.apply(conn, user, 10, "adjust", reason="top-up")
            await engine.quota_changed(user)
            await wait_status(pool, campaign, "completed")
        await check_invariants(pool, esp, settings)
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 7
    kinds = [k for k, _ in await _events(pool, campaign)]
    assert kinds == ["started", "paused", "charged", "resumed", "completed"]


async def test_no_available_service_pauses_until_a_service_is_enabled_or_mapped(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=6)
        disabled = await make_service(pool, deps.box, settings, clock.now(), base_url=url)
        await pool.execute("UPDATE services SET enabled = false WHERE id = $1", disabled)
        await map_user(pool, user, [disabled])
        await make_contacts(pool, user, 6)
        campaign = await make_campaign(pool, user, planned=6)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE")
            assert ("paused", "当前没有可用发信服务") in await _events(pool, campaign)
            # A USER pause on top is not lifted by the condition clearing.
            await engine.pause_campaign(campaign, user)
            await pool.execute("UPDATE services SET enabled = true WHERE id = $1", disabled)
            await engine.services_changed(disabled)
            await wait_status(pool, campaign, "paused", "USER")
            await engine.resume_campaign(campaign, user)
            await wait_status(pool, campaign, "completed")
            # A second campaign with no mapping at all pauses, and a new mapping clears it.
            other = await make_user(pool, quota=2)
            await make_contacts(pool, other, 2, prefix="o")
            second = await make_campaign(pool, other, planned=2)
            await engine.campaign_saved(second)
            await wait_status(pool, second, "paused", "NO_AVAILABLE_SERVICE")
            await map_user(pool, other, [disabled])
            await engine.mapping_changed(other)
            await wait_status(pool, second, "completed")
        await check_invariants(pool, esp, settings)


async def test_campaigns_that_cannot_start_fail_with_a_reason_and_a_full_refund(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    user = await make_user(pool, quota=30)
    no_recipients = await make_campaign(pool, user, planned=10)
    await make_contacts(pool, user, 3)
    sender_gone = await make_campaign(pool, user, planned=10)
    await pool.execute("UPDATE campaigns SET sender_id = NULL WHERE id = $1", sender_gone)
    # Excluding every contact leaves nobody.
    tag = await pool.fetchval("INSERT INTO tags (user_id, name) VALUES ($1, 'all') RETURNING id", user)
    await pool.execute("INSERT INTO contact_tags (tag_id, contact_id) SELECT $1, id FROM contacts", tag)
    await pool.execute("INSERT INTO campaign_tags (campaign_id, tag_id, mode) VALUES ($1, $2, 'exclude')",
                       no_recipients, tag)
    bad_template = await make_campaign(pool, user, planned=10, html="<p>{{ name.__class__ }}</p>")
    engine, _ = new_engine(settings, pool, clock, deps.box)
    async with running(engine):
        for c in (no_recipients, sender_gone, bad_template):
            await wait_status(pool, c, "failed")
    reasons = {r["id"]: r["failure_reason"] for r in await pool.fetch("SELECT id, failure_reason FROM campaigns")}
    assert reasons[no_recipients].startswith("no recipients")
    assert "no longer exists" in reasons[sender_gone]
    assert "cannot render" in reasons[bad_template]
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 30
    assert await pool.fetchval("SELECT count(*) FROM subtasks") == 0
    await check_invariants(pool, None, settings)
