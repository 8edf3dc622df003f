"""The whole feedback loop through the fake ESP: callbacks in, suppression, the second campaign
skipping suppressed addresses (counted, not charged), one-click unsubscribe, the reputation guard
and retry of retryable failures."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timezone
from urllib.parse import urlsplit

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from tests.conftest import Api
from tests.engine_support import (
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    map_user,
    new_engine,
    running,
    wait_status,
)
from tests.feedback_support import callbacks_done, patch_settings, webhook_service

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
N = 40


async def test_second_campaign_skips_bounced_complained_unsubscribed(admin: Api, deps) -> None:
    pool = deps.pool
    clock = ScaledClock(START, factor=50)
    # The fake signs with the real time while the engine runs on a scaled clock: the replay
    # window is tested on its own (test_feedback_webhooks); here it is wide open.
    patch_settings(deps, webhook_tolerance=10**9)
    async with fake_esp(FakeEspConfig(seed=7)) as (esp_url, esp):
        user, api = await admin.new_user(quota=2 * N)
        uid = uuid.UUID(user["id"])
        # Seed 7 and this account draw 4 hard bounces, 1 complaint and 2 unsubscribes in 40.
        service, _ = await webhook_service(admin, deps, esp, esp_url, clock, api_user="loop-5",
                                           hard_bounce_rate=0.1, complaint_rate=0.05, unsubscribe_rate=0.05,
                                           open_rate=0.3, click_rate=0.1)
        await map_user(pool, uid, [service])
        emails = await make_contacts(pool, uid, N)
        first = await make_campaign(pool, uid, planned=N)
        engine, _ = new_engine(deps.settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            await wait_status(pool, first, "completed")
            await callbacks_done(esp, N)
            posted = list(esp.webhooks.posted)
            assert {p.status for p in posted} == {200}, "every callback accepted"
            kinds: dict[str, set[str]] = defaultdict(set)
            for p in posted:
                kinds[p.kind].add(p.to)
            dead = kinds["invalid"] | kinds["report"] | kinds["unsubscribe"]
            assert (len(kinds["invalid"]), len(kinds["report"]), len(kinds["unsubscribe"])) == (4, 1, 2)
            # Every message carried the one-click unsubscribe headers (EngageLab: body `headers`).
            for e in esp.log.entries():
                assert e.headers is not None and e.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                assert e.headers["List-Unsubscribe"].startswith("<http")
            listed = await pool.fetch("SELECT email, reason FROM suppressions WHERE user_id = $1", uid)
            assert {r["email"] for r in listed} == {e.lower() for e in dead}
            funnel = await api.ok("GET", f"/campaigns/{first}/funnel")
            assert (await api.ok("GET", f"/campaigns/{first}"))["funnel"] == funnel  # also in the detail
            assert funnel["sent"] == N and funnel["hard_bounced"] == len(kinds["invalid"])
            assert funnel["delivered"] == len(kinds["delivered"]) and funnel["opened"] == len(kinds["open"])
            assert funnel["complained"] == len(kinds["report"])
            assert funnel["unsubscribed"] == len(kinds["unsubscribe"])
            # Counts are derivable from the event rows: one row per callback.
            assert await pool.fetchval("SELECT count(*) FROM delivery_events WHERE campaign_id = $1",
                                       first) == len(posted)
            assert (await api.ok("GET", "/me/suppression-count"))["suppressed"] == len(dead)
            # Daily history (one day here), for the campaign and, as an admin, for the service.
            for who, scope, target in ((api, "campaign", first), (admin, "service", service)):
                days = (await who.ok("GET", f"/reports/daily?scope={scope}&id={target}"))["days"]
                assert len(days) == 1 and days[0]["sent"] == N and days[0]["failed"] == 0, days
                assert days[0]["delivered"] == len(kinds["delivered"])
                assert days[0]["bounced"] == len(kinds["invalid"])
                assert days[0]["complained"] == len(kinds["report"])
            await api.err("GET", f"/reports/daily?scope=user&id={uuid.uuid4()}", 404, "NOT_FOUND")
            rates = await admin.ok("GET", f"/services/{service}/reputation")
            assert rates["sends"] == N and rates["hard_bounced"] == len(kinds["invalid"])

            # The second campaign to the same contacts: suppressed addresses are left out.
            seq_before = esp.log.next_seq()
            second = await make_campaign(pool, uid, planned=N)
            await engine.campaign_saved(second)
            await wait_status(pool, second, "completed")
            sent_to = {e.to[0] for e in esp.log.entries(since=seq_before) if e.to}
            assert sent_to == set(emails) - dead
            row = await pool.fetchrow("SELECT total, suppressed_count FROM campaigns WHERE id = $1", second)
            assert (row["total"], row["suppressed_count"]) == (N - len(dead), len(dead))
            # Not charged: the reservation of the suppressed ones came back at the start.
            assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", uid) == len(dead)

            # One-click unsubscribe, as a mailbox provider does it: a plain POST, no login.
            await callbacks_done(esp, len(posted) + 1)  # the second campaign's own callbacks
            listed_now = {r["email"] for r in await pool.fetch("SELECT email FROM suppressions")}
            entry = next(e for e in esp.log.entries(since=seq_before)
                         if e.to and e.headers and e.to[0].lower() not in listed_now)
            path = urlsplit(entry.headers["List-Unsubscribe"].strip("<>")).path  # type: ignore[index]
            client = admin.client
            page = await client.get(path)
            assert page.status == 200 and entry.to[0] in await page.text()  # type: ignore[index]
            for _ in range(2):  # idempotent
                resp = await client.post(path, data="List-Unsubscribe=One-Click",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert resp.status == 200, await resp.text()
            assert await pool.fetchval("SELECT reason FROM suppressions WHERE user_id = $1 AND email = $2",
                                       uid, entry.to[0].lower()) == "unsubscribe"  # type: ignore[index]
            forged = path[:-1] + ("0" if path[-1] != "0" else "1")
            assert (await client.post(forged)).status == 404
        deps.engine = None


async def test_reputation_guard_freezes_a_service_fed_ten_percent_bounces(admin: Api, deps) -> None:
    pool = deps.pool
    clock = ScaledClock(START, factor=50)
    patch_settings(deps, webhook_tolerance=10**9, guard_min_sends=20)
    async with fake_esp(FakeEspConfig(seed=3)) as (esp_url, esp):
        user, api = await admin.new_user(quota=60)
        uid = uuid.UUID(user["id"])
        # Seed 3 and this account draw exactly 6 hard bounces in 60 sends (10 %), spread so that
        # every bounce after the 20th send finds the rate well above 5 % whatever the timing.
        service, _ = await webhook_service(admin, deps, esp, esp_url, clock, api_user="guard-27",
                                           hard_bounce_rate=0.1)
        await map_user(pool, uid, [service])
        await make_contacts(pool, uid, 60)
        campaign = await make_campaign(pool, uid, planned=60)
        engine, _ = new_engine(deps.settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE")
            assert engine.state.services[service].abnormal_frozen
        deps.engine = None
        svc = await admin.ok("GET", f"/services/{service}")
        assert svc["abnormal_frozen"] and svc["abnormal_reason"].startswith("reputation guard: hard bounce rate")
        log = await pool.fetchval("SELECT data FROM service_status_log WHERE service_id = $1 "
                                  "AND kind = 'frozen'", service)
        # What the guard saw when it froze the service.
        assert log["guard"] and log["sends"] >= 20 and log["hard_bounced"] / log["sends"] > 0.05, log
        rates = await admin.ok("GET", f"/services/{service}/reputation")
        assert rates["sends"] >= log["sends"] and rates["hard_bounced"] >= log["hard_bounced"]


async def test_retry_resends_only_retryable_failures(admin: Api, deps) -> None:
    pool = deps.pool
    clock = ScaledClock(START, factor=50)
    patch_settings(deps, webhook_tolerance=10**9)
    async with fake_esp(FakeEspConfig(seed=11)) as (esp_url, esp):
        user, api = await admin.new_user(quota=100)
        uid = uuid.UUID(user["id"])
        # Seed 11 and this account: 8 of the 30 sends fail.
        service, _ = await webhook_service(admin, deps, esp, esp_url, clock, api_user="retry-0")
        api_user = "retry-0"
        esp.config = esp.config.__class__(**{**{f: getattr(esp.config, f) for f in esp.config.__struct_fields__},
                                             "users": {api_user: Knobs(error_rate=0.3)}})
        await map_user(pool, uid, [service])
        await make_contacts(pool, uid, 30)
        campaign = await make_campaign(pool, uid, planned=30)
        engine, _ = new_engine(deps.settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            await wait_status(pool, campaign, "completed")
            failed = await pool.fetch("SELECT id, email FROM subtasks WHERE campaign_id = $1 AND status = 'failed' "
                                      "ORDER BY seq", campaign)
            assert len(failed) == 8, "the fake failed some sends"
            # One failed address is suppressed meanwhile, one failed on its template, one timed out
            # (its outcome is unknown: it may have been delivered): none of them is retried.
            await api.ok("POST", "/suppressions", json={"email": failed[0]["email"], "reason": "asked by phone"})
            await pool.execute("UPDATE subtasks SET error = 'TEMPLATE_ERROR: x' WHERE id = $1", failed[1]["id"])
            await pool.execute("UPDATE subtasks SET error = 'TIMEOUT: no answer' WHERE id = $1", failed[2]["id"])
            await api.err("POST", f"/campaigns/{uuid.uuid4()}/retry", 404, "NOT_FOUND")
            esp.config = esp.config.__class__(**{**{f: getattr(esp.config, f) for f in esp.config.__struct_fields__},
                                                 "users": {}})
            quota_before = await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", uid)
            seq_before = esp.log.next_seq()
            done = await api.ok("POST", f"/campaigns/{campaign}/retry")
            retryable = {str(r["id"]) for r in failed[3:]}
            assert done["requeued"] == len(retryable)
            assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", uid) \
                == quota_before - len(retryable)

            async def resent() -> bool:
                return await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign) == "completed" \
                    and len([e for e in esp.log.entries(since=seq_before)]) >= len(retryable)
            await eventually(resent, what="the retry to finish")
            resends = esp.log.entries(since=seq_before)
            assert {e.custom_args["subtask_id"] for e in resends if e.custom_args} == retryable
            # A new attempt: its own request id (the subtask id with the attempt).
            assert {e.request_id for e in resends} == {f"{i}.2" for i in retryable}
            await api.err("POST", f"/campaigns/{campaign}/retry", 409, "INVALID_STATE")
        deps.engine = None
