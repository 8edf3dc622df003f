"""Hot state has one owner (issue 8, item 5): admin changes are commands the leader applies to
its memory; fields the engine owns are never read back from a row while it runs; the standby
and `edm quota` reach the leader with the same commands."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from edm.quota_tool import reset_by_name
from engine.infra.scaled_clock import ScaledClock
from tests.conftest import Api
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


async def test_an_admin_edit_never_overwrites_what_the_engine_owns(admin: Api, deps) -> None:
    pool, settings = deps.pool, deps.settings
    engine, _ = new_engine(settings, pool, deps.clock, deps.box)
    deps.engine = engine
    service = await make_service(pool, deps.box, settings, deps.clock.now(), base_url="http://127.0.0.1:9",
                                 daily_quota=100)
    async with running(engine):
        s = engine.state.services[service]
        # What the engine knows and has not flushed yet: a failure streak, a throttle, and a
        # throttled request given back to today's count.
        until = deps.clock.now() + timedelta(minutes=5)
        s.consecutive_failures, s.throttled_until = 4, until
        s.remaining_today += 1
        await admin.ok("PATCH", f"/services/{service}", json={"send_interval": 7, "daily_quota": 150})
        assert s.send_interval == 7 and s.daily_quota == 150
        assert (s.consecutive_failures, s.throttled_until) == (4, until)
        assert s.remaining_today == 151  # memory's 101, moved by the same +50 as the row
        await admin.ok("PUT", f"/services/{service}/remaining", json={"remaining": 9, "reason": "test"})
        assert s.remaining_today == 9 and s.consecutive_failures == 4
        await admin.ok("POST", f"/services/{service}/disable")
        assert not s.enabled and s.throttled_until == until


async def test_commands_from_a_standby_and_edm_quota_reach_the_leader(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=6)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, daily_quota=2,
                                     name="svc-quota")
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 6)
        campaign = await make_campaign(pool, user, planned=6)
        leader, _ = new_engine(settings, pool, clock, deps.box)
        standby, _ = new_engine(settings, pool, clock, deps.box)
        async with running(leader):
            await standby.start()

            async def standing_by() -> bool:
                return standby.role == "standby"
            await eventually(standing_by, what="the standby")
            await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
            # `edm quota reset-now`: its own connection, one transaction, the command at commit.
            conn = await pool.acquire()
            try:
                t0 = time.monotonic()
                assert await reset_by_name(conn, "svc-quota", clock.now()) == service

                async def third_request() -> bool:
                    return len(esp.log.entries()) >= 3
                await eventually(third_request, what="a request after the reset")
                took = time.monotonic() - t0
            finally:
                await pool.release(conn)
            print(f"edm quota reset-now -> next request in {took * 1000:.0f} ms")
            assert took < 2.0  # "within a second"; the margin is for a busy machine
            await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
            # The same command through the standby's API surface.
            await standby.reset_now(service, None)
            await wait_status(pool, campaign, "completed")
            await standby.stop()
            await standby.providers.close()  # type: ignore[attr-defined]
        row = await pool.fetchrow("SELECT used_today, remaining_today FROM services WHERE id = $1", service)
        assert (row["used_today"], row["remaining_today"]) == (2, 0)
