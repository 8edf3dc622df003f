"""The issue's yardstick: a 10,000-contact campaign runs from due to completed through the fake
ESP over real HTTP, and every invariant holds on the request log and the database."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import check_invariants, eventually, fake_esp, new_engine, seed_campaign

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


@pytest.mark.timeout(900)
async def test_ten_thousand_contact_campaign_completes_through_the_fake_esp(deps) -> None:
    """40 services at 1 s: 250 s of sending in virtual time, which runs 50× faster than the wall clock."""
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=10_000, services=40,
                                                       send_interval=1, daily_quota=2_000, templates=3)
        engine, _ = new_engine(settings, pool, clock, deps.box, claim_batch=500)
        await engine.start()
        await engine.wait_leader(10)
        try:
            async def completed() -> bool:
                return await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign) == "completed"
            await eventually(completed, timeout=600, what="the 10k campaign to complete")
        finally:
            await engine.stop()
            await engine.providers.close()  # type: ignore[attr-defined]
        figures = await check_invariants(pool, esp, settings)
    assert figures["requests"] == 10_000
    assert await pool.fetchval("SELECT sent_count FROM campaigns WHERE id = $1", campaign) == 10_000
