"""Per-service limits from the seeds: the abnormal-freeze threshold is a service setting."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

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


# -- the seeds' MAX_CONCURRENT_CAMPAIGNS ---------------------------------------------------------

def test_active_campaign_rules() -> None:
    from engine.domain.campaign_limits import is_active, may_activate

    assert is_active("running", None) and is_active("paused", "NO_USER_QUOTA")
    assert not is_active("paused", "USER") and not is_active("pending", None)
    assert may_activate(0, 1) and not may_activate(1, 1) and may_activate(99, 0)


async def test_a_user_runs_at_most_the_cap_and_the_next_waits_pending(deps: Deps) -> None:
    import msgspec

    from engine.domain.errors import ConcurrentCampaignLimit

    pool = deps.pool
    settings = msgspec.structs.replace(deps.settings, max_concurrent_campaigns=1)
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=100)
        other = await make_user(pool, quota=100)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        await map_user(pool, user, [service])
        await map_user(pool, other, [service])
        await make_contacts(pool, user, 6)
        await make_contacts(pool, other, 6)
        first = await make_campaign(pool, user, planned=6)
        second = await make_campaign(pool, user, planned=6)
        theirs = await make_campaign(pool, other, planned=6)  # another user's cap is their own
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, first, "running")
            await engine.pause_campaign(first, user)
            # A person's pause frees the slot: the second one starts.
            await wait_status(pool, second, "running")
            try:
                await engine.resume_campaign(first, user)
                raise AssertionError("resumed over the cap")
            except ConcurrentCampaignLimit as exc:
                assert exc.code == "CONCURRENT_CAMPAIGN_LIMIT"
            await wait_status(pool, second, "completed", timeout=60)
            await engine.resume_campaign(first, user)
            await wait_status(pool, first, "completed", timeout=60)
            await wait_status(pool, theirs, "completed", timeout=60)
        # Never two of the user's campaigns active at once: the second started only after the
        # first was paused, and the first came back only after the second finished.
        times = {r["id"]: r for r in await pool.fetch(
            "SELECT id, started_at, finished_at FROM campaigns WHERE id = ANY($1::uuid[])", [first, second])}
        events = await pool.fetch("SELECT kind, created_at FROM campaign_events WHERE campaign_id = $1 "
                                  "AND kind IN ('paused', 'resumed') ORDER BY id", first)
        assert [e["kind"] for e in events] == ["paused", "resumed"]
        assert times[second]["started_at"] >= events[0]["created_at"]
        assert events[1]["created_at"] >= times[second]["finished_at"]
        assert len(esp.log.entries()) == 18


# -- on-demand credentials probe ------------------------------------------------------------------

async def test_probe_engagelab_credentials_against_the_fake_esp(admin: Api) -> None:
    from edm.fake_esp import FakeEspConfig, Knobs
    from tests.service_factory import ENGAGELAB_KEY

    config = FakeEspConfig(keys={"edm_marketing_user": ENGAGELAB_KEY}, users={"suspended": Knobs(fail_all=True)})
    async with fake_esp(config) as (url, esp):
        good = await admin.ok("POST", "/services", json=engagelab_payload(base_url=url))
        result = await admin.ok("POST", f"/services/{good['id']}/probe")
        assert (result["verdict"], result["ok"], result["detail"]) == ("ok", True, "HTTP 200")
        wrong = await admin.ok("POST", "/services", json=engagelab_payload(
            base_url=url, credentials={"api_user": "edm_marketing_user", "api_key": "wrong-key-000000"}))
        result = await admin.ok("POST", f"/services/{wrong['id']}/probe")
        assert (result["verdict"], result["detail"]) == ("rejected", "HTTP 401 code 40101")
        gone = await admin.ok("POST", "/services", json=engagelab_payload(
            base_url=url, credentials={"api_user": "suspended", "api_key": "k" * 20}))
        result = await admin.ok("POST", f"/services/{gone['id']}/probe")
        assert (result["verdict"], result["detail"]) == ("rejected", "HTTP 403 code 40301")
        # Probes send nothing: the send log stays empty; two probes got past authentication.
        assert esp.log.entries() == [] and esp.probes == ["edm_marketing_user", "suspended"]
        assert ENGAGELAB_KEY not in str(result)
    dead = await admin.ok("POST", "/services", json=engagelab_payload(base_url="http://127.0.0.1:1"))
    result = await admin.ok("POST", f"/services/{dead['id']}/probe")
    assert result["verdict"] == "unreachable" and not result["ok"]
    await admin.err("POST", f"/services/{uuid4()}/probe", 404, "NOT_FOUND", "id")


async def test_probe_smtp_credentials_with_auth(admin: Api) -> None:
    from tests.service_factory import smtp_payload
    from tests.test_provider_smtp import LOGIN, PASSWORD, start_server

    smtp = await start_server(auth=True)
    try:
        creds = {"host": "127.0.0.1", "port": smtp.port, "username": LOGIN, "password": PASSWORD, "tls": "none"}
        good = await admin.ok("POST", "/services", json=smtp_payload(credentials=creds))
        result = await admin.ok("POST", f"/services/{good['id']}/probe")
        assert (result["verdict"], result["detail"]) == ("ok", "SMTP 250")
        bad = await admin.ok("POST", "/services", json=smtp_payload(credentials={**creds, "password": "nope-nope"}))
        result = await admin.ok("POST", f"/services/{bad['id']}/probe")
        assert (result["verdict"], result["detail"]) == ("rejected", "SMTP 535")
        assert smtp.recorder.messages == []
    finally:
        smtp.server.close()
