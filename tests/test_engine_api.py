"""The engine's API actions: pause/resume/cancel a running campaign, its subtasks and progress,
and the admin's unfreeze and reset-now on a service."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from engine.infra.scaled_clock import ScaledClock
from tests.conftest import Api
from tests.engine_support import (
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    map_user,
    new_engine,
    running,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_campaign_actions_progress_and_subtasks(admin: Api, deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user, api = await admin.new_user(quota=6)
        _, stranger = await admin.new_user()
        uid = uuid.UUID(user["id"])
        # One request a minute (about a second of real time here): the campaign is still running
        # while it is paused, resumed and cancelled.
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=60)
        await map_user(pool, uid, [service])
        await make_contacts(pool, uid, 6)
        campaign = await make_campaign(pool, uid, planned=6)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            await wait_status(pool, campaign, "running")

            async def one_sent() -> bool:
                return await pool.fetchval("SELECT sent_count FROM campaigns") >= 1
            await eventually(one_sent, what="a first send")
            path = f"/campaigns/{campaign}"
            await stranger.err("POST", path + "/pause", 404, "NOT_FOUND")
            await stranger.err("GET", path + "/progress", 404, "NOT_FOUND")
            paused = await api.ok("POST", path + "/pause")
            assert (paused["status"], paused["pause_reason"], paused["pause_message"]) == ("paused", "USER", "已手动暂停")
            progress = await api.ok("GET", path + "/progress")
            assert progress["total"] == 6 and progress["sent"] >= 1
            assert progress["pending"] + progress["sending"] + progress["sent"] == 6
            resumed = await api.ok("POST", path + "/resume")
            assert resumed["status"] == "running" and resumed["pause_reason"] is None
            # Resuming what already runs is refused, as pausing a cancelled campaign is.
            await api.err("POST", path + "/resume", 409, "INVALID_STATE", field="status")
            sent = await api.ok("GET", path + "/subtasks?status=sent&limit=10")
            assert sent["total"] >= 1 and all(s["status"] == "sent" for s in sent["items"])
            assert sent["items"][0]["from_address"].endswith("@mail.example.com")
            everything = await api.ok("GET", path + "/subtasks?limit=2&offset=1")
            assert everything["total"] == 6 and [s["seq"] for s in everything["items"]] == [2, 3]
            await api.err("GET", path + "/subtasks?status=bogus", 400, "VALIDATION_ERROR", field="status")
            # Cancel (the campaigns route hands running campaigns to the engine).
            await api.ok("POST", path + "/cancel")
            await wait_status(pool, campaign, "cancelled")
            await api.err("POST", path + "/resume", 409, "INVALID_STATE")
        deps.engine = None
    row = await pool.fetchrow("SELECT sent_count, failed_count, cancelled_count, reserved FROM campaigns")
    attempted = row["sent_count"] + row["failed_count"]
    assert row["cancelled_count"] == 6 - attempted and row["reserved"] == attempted
    # Exactly the never-attempted subtasks were refunded.
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", uid) == 6 - attempted


async def test_service_unfreeze_and_reset_now(admin: Api, deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    _, user_api = await admin.new_user()
    service = await make_service(pool, deps.box, settings, clock.now(), base_url="http://127.0.0.1:9",
                                 daily_quota=5)
    await admin.err("POST", f"/services/{service}/unfreeze", 503, "SERVICE_UNAVAILABLE")
    engine, _ = new_engine(settings, pool, clock, deps.box)
    deps.engine = engine
    async with running(engine):
        await user_api.err("POST", f"/services/{service}/unfreeze", 403, "FORBIDDEN")
        await admin.err("POST", f"/services/{uuid.uuid4()}/unfreeze", 404, "NOT_FOUND")
        await admin.err("POST", f"/services/{service}/unfreeze", 409, "INVALID_STATE")
        await pool.execute("UPDATE services SET abnormal_frozen = true, abnormal_reason = 'test', "
                           "consecutive_failures = 10, used_today = 5, remaining_today = 0 WHERE id = $1", service)
        await engine.services_changed(service)
        thawed = await admin.ok("POST", f"/services/{service}/unfreeze")
        assert thawed["abnormal_frozen"] is False and thawed["consecutive_failures"] == 0
        assert engine.state.services[service].abnormal_frozen is False
        reset = await admin.ok("POST", f"/services/{service}/reset-now")
        assert (reset["used_today"], reset["remaining_today"]) == (0, 5)
        assert engine.state.services[service].remaining_today == 5
    deps.engine = None
    kinds = [r["kind"] for r in await pool.fetch(
        "SELECT kind FROM service_status_log WHERE service_id = $1 ORDER BY id", service)]
    assert kinds == ["unfrozen", "reset"]


async def test_a_campaign_made_through_the_api_runs_to_completion(admin: Api, deps) -> None:
    from tests.campaign_factory import make_sender_and_template
    from tests.engine_support import check_invariants
    from tests.service_factory import engagelab_payload

    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        services = [await admin.ok("POST", "/services", json=engagelab_payload(base_url=url, send_interval=1))
                    for _ in range(2)]
        user, api = await admin.new_user(quota=20)
        await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [s["id"] for s in services]})
        lines = "\n".join(f'{{"email": "p{i}@example.org", "name": "P{i}", "fields": {{"city": "Lyon"}}}}'
                          for i in range(12))
        status, body = await api.call("POST", "/contacts/import", data=lines.encode(),
                                      headers={"Content-Type": "application/x-ndjson"})
        assert status == 200 and body["data"]["imported"] == 12, body
        sender, template = await make_sender_and_template(api)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            campaign = await api.ok("POST", "/campaigns", json={"name": "api run", "sender_id": sender,
                                                                "template_ids": [template]})
            await wait_status(pool, uuid.UUID(campaign["id"]), "completed")
            progress = await api.ok("GET", f"/campaigns/{campaign['id']}/progress")
        deps.engine = None
        assert (progress["sent"], progress["percent"], progress["eta_seconds"]) == (12, 100.0, 0.0)
        assert sorted(e.to[0] for e in esp.log.entries()) == sorted(f"p{i}@example.org" for i in range(12))
        await check_invariants(pool, esp, settings)
