"""Warm-up ramps: the pure rule, the API, and an engine run across quota days on a fake clock
where no ramp day gets more requests than its quota."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

import pytest

from api.deps import Deps
from engine.domain.quota_day import quota_day_start
from engine.domain.warmup import Ramp, ramp_day, ramp_finished, ramp_quota
from engine.infra.clock import FakeClock
from tests.conftest import Api
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
    quiet,
    request_count,
    requests_answered,
    running,
    wait_status,
)
from tests.service_factory import engagelab_payload

UTC = timezone.utc


def test_schedule_and_factor_ramps() -> None:
    table = Ramp(schedule=(100, 300, 1000))
    assert [ramp_quota(500, table, d) for d in (1, 2, 3, 4, 30)] == [100, 300, 500, 500, 500]
    growth = Ramp(start=50, factor=2.0)
    assert [ramp_quota(1000, growth, d) for d in (1, 2, 3, 5, 6, 400)] == [50, 100, 200, 800, 1000, 1000]
    assert not ramp_finished(1000, growth, 5) and ramp_finished(1000, growth, 6) and ramp_finished(1000, None, 1)
    assert ramp_quota(1000, None, 1) == 1000
    assert ramp_day(date(2026, 11, 23), date(2026, 11, 23)) == 1
    assert ramp_day(date(2026, 11, 23), date(2026, 11, 25)) == 3


@pytest.mark.parametrize("ramp", [Ramp(), Ramp(schedule=(5,), start=1, factor=2.0), Ramp(start=5),
                                  Ramp(schedule=(10, 5))])
def test_unusable_ramps(ramp: Ramp) -> None:
    assert ramp.problem() is not None


async def test_warmup_through_the_api(admin: Api, deps: Deps) -> None:
    svc = await admin.ok("POST", "/services", json=engagelab_payload(daily_quota=1000,
                                                                     warmup={"schedule": [100, 300]}))
    assert (svc["remaining_today"], svc["warmup_day"], svc["warmup_quota"]) == (100, 1, 100)
    assert svc["warmup"] == {"schedule": [100, 300]} and svc["warmup_started"] == "2026-11-23"
    plain = await admin.ok("POST", "/services", json=engagelab_payload(daily_quota=1000))
    assert (plain["remaining_today"], plain["warmup"], plain["warmup_day"]) == (1000, None, None)
    # Set later, a ramp starts with the next quota day; today's quota stays.
    later = await admin.ok("PATCH", f"/services/{plain['id']}", json={"warmup": {"start": 50, "factor": 1.5}})
    assert (later["remaining_today"], later["warmup_started"], later["warmup_day"]) == (1000, "2026-11-24", None)
    # A schedule going down is schema-valid (no JSON Schema states it): 422; the rest the document refuses.
    for bad, status, field in (({"schedule": [10, 5]}, 422, "warmup"), ({"start": 5}, 400, "warmup"),
                               ({}, 400, "warmup"),
                               ({"start": 5, "factor": 1.0}, 400, "warmup.factor"),
                               ({"schedule": []}, 400, "warmup.schedule"),
                               ({"schedule": [1], "start": 1, "factor": 2}, 400, "warmup"),
                               ({"days": 3}, 400, "warmup.days")):
        code = "VALIDATION_ERROR" if status == 400 else "UNPROCESSABLE"
        await admin.err("POST", "/services", status, code, field, json=engagelab_payload(warmup=bad))
        await admin.err("PATCH", f"/services/{svc['id']}", status, code, field, json={"warmup": bad})
    assert await deps.pool.fetchval("SELECT count(*) FROM services") == 2
    cleared = await admin.ok("PATCH", f"/services/{svc['id']}", json={"warmup": None})
    assert (cleared["warmup"], cleared["warmup_started"], cleared["warmup_day"]) == (None, None, None)


BEFORE_RESET = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 01:00 Beijing, ramp day 1
RESET = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


async def test_no_ramp_day_gets_more_than_its_quota(deps: Deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(BEFORE_RESET)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=8)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, daily_quota=5,
                                     send_interval=1, reset_time="02:00")
        await pool.execute("UPDATE services SET warmup = '{\"schedule\": [2, 4]}', warmup_started = '2026-11-23', "
                           "remaining_today = 2 WHERE id = $1", service)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 8)
        campaign = await make_campaign(pool, user, planned=8)
        engine, _ = new_engine(settings, pool, clock, deps.box)

        async def requests(n: int) -> None:
            async def check() -> bool:
                return await requests_answered(pool, n)  # started, not just bound: the clock moves next
            await eventually(check, what=f"{n} requests")

        async with running(engine):
            done = 0
            for day_start, total in ((None, 2), (RESET, 6), (RESET + timedelta(days=1), 8)):
                if day_start is not None:
                    clock.set(day_start + timedelta(seconds=5))
                for n in range(done + 1, total + 1):
                    await requests(n)  # the service is free at the day's start, then every second
                    clock.advance(1)
                done = total
                await quiet(pool, engine)
                if total < 8:
                    await wait_status(pool, campaign, "paused", "SERVICE_QUOTA_EXHAUSTED")
                clock.advance(600)  # more time on the same day sends nothing more
                await quiet(pool, engine)
                assert await request_count(pool) == total
            await wait_status(pool, campaign, "completed")
        times = [r["attempted_at"] for r in await pool.fetch("SELECT attempted_at FROM subtasks")]
        per_day = Counter(quota_day_start(time(2, 0), settings.tz, t) for t in times)
        assert sorted(per_day.values()) == [2, 2, 4]  # day 1: 2 of 2, day 2: 4 of 4, day 3: the last 2 of 5
        quotas = [r["q"] for r in await pool.fetch(
            "SELECT (data->>'quota')::int AS q FROM service_status_log WHERE kind = 'reset' ORDER BY id")]
        assert quotas == [4, 5]
        assert len(esp.log.entries()) == 8
        await check_invariants(pool, esp, settings)
