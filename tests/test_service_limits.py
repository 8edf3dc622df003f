"""Per-service limits from the seeds: the abnormal-freeze threshold is a service setting."""

from __future__ import annotations

from datetime import datetime, timezone

from api.deps import Deps
from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from tests.conftest import Api
from tests.engine_support import (
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
from tests.service_factory import engagelab_payload

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_freeze_after_is_set_shown_and_validated(admin: Api, deps: Deps) -> None:
    svc = await admin.ok("POST", "/services", json=engagelab_payload(freeze_after=3))
    assert svc["freeze_after"] == 3
    default = await admin.ok("POST", "/services", json=engagelab_payload())
    assert default["freeze_after"] is None  # the engine's default, 10
    patched = await admin.ok("PATCH", f"/services/{svc['id']}", json={"freeze_after": 25})
    assert patched["freeze_after"] == 25
    log = await admin.ok("GET", f"/services/{svc['id']}/status-log")
    assert log["items"][0]["data"]["changes"]["freeze_after"] == {"old": 3, "new": 25}
    cleared = await admin.ok("PATCH", f"/services/{svc['id']}", json={"freeze_after": None})
    assert cleared["freeze_after"] is None
    for bad in (0, 1001, "3"):
        await admin.err("PATCH", f"/services/{svc['id']}", 400, "VALIDATION_ERROR", "freeze_after",
                        json={"freeze_after": bad})
        await admin.err("POST", "/services", 400, "VALIDATION_ERROR", "freeze_after",
                        json=engagelab_payload(freeze_after=bad))
    assert await deps.pool.fetchval("SELECT count(*) FROM services") == 2


async def test_a_service_freezes_after_its_own_threshold(deps: Deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=20)
    config = FakeEspConfig(users={"broken": Knobs(fail_all=True)})
    async with fake_esp(config) as (url, esp):
        user = await make_user(pool, quota=10)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, api_user="broken")
        await pool.execute("UPDATE services SET freeze_after = 3 WHERE id = $1", service)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 10)
        campaign = await make_campaign(pool, user, planned=10)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE")
        row = await pool.fetchrow("SELECT abnormal_frozen, abnormal_reason, consecutive_failures FROM services")
        assert row["abnormal_frozen"] and row["consecutive_failures"] == 3
        assert row["abnormal_reason"].startswith("3 consecutive failures")
        assert esp.log.counts["failed"] == 3
