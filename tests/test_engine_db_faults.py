"""Transient database errors are not fatal (issue 8, item 2): dropped connections are retried by
the task that met them, results wait in memory, and only a bug stops the engine. A campaign
whose start always fails is failed with the reason instead of crash-looping the engine.
(PostgreSQL restarts and outages: tests/test_faults.py, `make faults`.)"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.db import is_transient
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
    running,
    seed_campaign,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
KILL = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " \
       "WHERE datname = current_database() AND pid <> pg_backend_pid()"


async def _status(pool, campaign) -> str | None:
    """The campaign's status, or None while the pool's connections are being replaced."""
    try:
        return await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign)  # type: ignore[no-any-return]
    except Exception as exc:
        if is_transient(exc):
            return None
        raise


async def test_dropped_connections_never_stop_the_engine(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=20))) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=60, services=3)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            killed = 0
            for target in (5, 20, 35):
                async def reached() -> bool:
                    return len(esp.log.entries()) >= target
                await eventually(reached, what=f"{target} requests")
                # Every connection of this database dies: the engine's pool, its LISTEN connection.
                async with deps.pool.acquire() as conn:
                    killed += await conn.fetchval(KILL)

            async def completed() -> bool:
                return await _status(pool, campaign) == "completed"
            await eventually(completed, timeout=40, what="the campaign to complete")
            assert killed >= 3 and engine.role == "leader" and engine.error is None
        await check_invariants(pool, esp, settings)


async def test_a_campaign_whose_start_always_fails_is_failed_with_the_reason(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=10)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 5)
        bad = await make_campaign(pool, user, planned=5)
        good = await make_campaign(pool, user, planned=5)
        # Whatever makes this one campaign's fan-out raise (not a connection problem): always.
        await pool.execute(f"""
            CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.campaign_id = '{bad}' THEN RAISE EXCEPTION 'fan-out exploded'; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER boom BEFORE INSERT ON subtasks FOR EACH ROW EXECUTE FUNCTION boom();""")
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            async def settled() -> bool:
                return await _status(pool, bad) == "failed" and await _status(pool, good) == "completed"
            await eventually(settled, what="one campaign failed, the other completed")
            assert engine.role == "leader" and engine.error is None
        row = await pool.fetchrow("SELECT failure_reason, reserved FROM campaigns WHERE id = $1", bad)
        assert "fan-out exploded" in row["failure_reason"] and row["reserved"] == 0
        assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 5  # refunded
        await check_invariants(pool, esp, settings)
        await asyncio.sleep(0)
