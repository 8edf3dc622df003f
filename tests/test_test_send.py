"""Test sends: one rendered message to one address through a chosen service, counted against the
service's interval and daily quota and the owner's quota, judged from the fake ESP's log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from api.deps import Deps
from engine.infra.clock import FakeClock
from tests.conftest import Api
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_service,
    map_user,
    new_engine,
    running,
)

LATER = datetime(2027, 1, 1, tzinfo=timezone.utc)


async def test_a_test_send_is_rendered_counted_and_keeps_the_interval(admin: Api, deps: Deps,
                                                                     clock: FakeClock) -> None:
    pool, settings = deps.pool, deps.settings
    async with fake_esp() as (url, esp):
        user, api = await admin.new_user(quota=5)
        uid = uuid.UUID(user["id"])
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=60,
                                     daily_quota=2, domain="mail.example.com")
        unmapped = await make_service(pool, deps.box, settings, clock.now(), base_url=url)
        await map_user(pool, uid, [service])
        await pool.execute("INSERT INTO contacts (user_id, email, name, fields) "
                           "VALUES ($1, 'tom@example.org', 'Tom', '{\"city\": \"Paris\"}')", uid)
        campaign = await make_campaign(pool, uid, planned=0, scheduled_at=LATER, sender="news")
        engine, _ = new_engine(settings, pool, clock, deps.box)
        deps.engine = engine
        engine.tester.max_wait = 0.3
        async with running(engine):
            path = f"/campaigns/{campaign}/test-send"
            sent = await api.ok("POST", path, json={"to": "tom@example.org", "service_id": str(service)})
            assert (sent["status"], sent["from_address"], sent["subject"]) == ("sent", "news@mail.example.com",
                                                                                "Hi Tom #0")
            [entry] = esp.log.entries()
            assert (entry.to, entry.request_id, entry.outcome) == (["tom@example.org"], sent["subtask_id"], "sent")
            # The interval holds: a second one within 60 s waits for the slot, then gives up.
            err = await api.err("POST", path, 409, "SERVICE_BUSY", "service_id",
                                json={"to": "ann@example.org", "service_id": str(service)})
            assert err["details"]["retry_after"] == 60
            assert len(esp.log.entries()) == 1
            engine.tester.max_wait = 30
            second = asyncio.create_task(api.ok("POST", path, json={"to": "ann@example.org",
                                                                    "service_id": str(service)}))
            await asyncio.sleep(0.2)
            assert not second.done()
            clock.advance(60)
            done = await asyncio.wait_for(second, 10)
            assert done["status"] == "sent" and done["subject"] == "Hi  #0"  # not a contact: name is empty
            # The daily quota (2) is spent: a third is refused, nothing is sent.
            clock.advance(60)
            await api.err("POST", path, 409, "INVALID_STATE", "service_id",
                          json={"to": "bob@example.org", "service_id": str(service)})
            await api.err("POST", path, 400, "VALIDATION_ERROR", "service_id",
                          json={"to": "bob@example.org", "service_id": str(unmapped)})
            await api.err("POST", path, 400, "VALIDATION_ERROR", "to",
                          json={"to": "not-an-address", "service_id": str(service)})
            _, stranger = await admin.new_user(quota=5)
            await stranger.err("POST", path, 404, "NOT_FOUND", "id",
                               json={"to": "bob@example.org", "service_id": str(service)})
        assert len(esp.log.entries()) == 2
        times = [r["attempted_at"] for r in await pool.fetch(
            "SELECT attempted_at FROM subtasks WHERE service_id = $1 ORDER BY attempted_at", service)]
        assert times[1] - times[0] == timedelta(seconds=60)
        row = await pool.fetchrow("SELECT used_today, remaining_today FROM services WHERE id = $1", service)
        assert (row["used_today"], row["remaining_today"]) == (2, 0)
        assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", uid) == 3
        records = await pool.fetch("SELECT name, status, sent_count FROM campaigns WHERE name LIKE 'test send:%'")
        assert [(r["status"], r["sent_count"]) for r in records] == [("completed", 1)] * 2
        await check_invariants(pool, esp, settings)


async def test_a_template_test_send_uses_one_of_the_owners_senders(admin: Api, deps: Deps, clock: FakeClock) -> None:
    pool, settings = deps.pool, deps.settings
    async with fake_esp() as (url, esp):
        user, api = await admin.new_user(quota=1)
        uid = uuid.UUID(user["id"])
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, domain="m.example.com")
        await map_user(pool, uid, [service])
        await api.ok("POST", "/senders", json={"name": "hello"})
        template = await api.ok("POST", "/templates", json={"name": "welcome", "subject": "Welcome {{ email }}",
                                                            "html_body": "<p>Hi</p>", "text_body": "Hi"})
        engine, _ = new_engine(settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            path = f"/templates/{template['id']}/test-send"
            await api.err("POST", path, 400, "VALIDATION_ERROR", "sender",
                          json={"to": "x@example.org", "service_id": str(service), "sender": "nobody"})
            got = await api.ok("POST", path, json={"to": "x@example.org", "service_id": str(service),
                                                   "sender": "hello"})
            assert (got["status"], got["from_address"], got["subject"]) == ("sent", "hello@m.example.com",
                                                                             "Welcome x@example.org")
            # The owner's quota (1) is spent: the next is refused and nothing is counted.
            clock.advance(3600)
            await api.err("POST", path, 409, "QUOTA_INSUFFICIENT",
                          json={"to": "y@example.org", "service_id": str(service), "sender": "hello"})

            async def quiet() -> bool:
                return await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'sending'") == 0
            await eventually(quiet)
        assert [e.to for e in esp.log.entries()] == [["x@example.org"]]
        assert await pool.fetchval("SELECT used_today FROM services WHERE id = $1", service) == 1
        await check_invariants(pool, esp, settings)
