"""Probe before a timed unfreeze (issue 13 item 5): a service the engine froze comes due after its
`unfreeze_after`; with `probe_before_unfreeze` its credentials are probed first, off the dispatch
path. A failed probe keeps it frozen with the probe's error as the reason and probes again after
the backoff; a passing one unfreezes it. Judged from the fake ESP's log: no send request from the
service between its freeze and the probe that passed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from api.deps import Deps
from edm.fake_esp import FakeEspConfig
from engine.alerts.evaluator import AlertEvaluator
from engine.domain.thaw_rules import probe_backoff
from tests.conftest import Api
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_user,
    map_user,
    new_engine,
    requests_answered,
    running,
    wait_status,
)
from tests.service_factory import engagelab_payload


class _Leading:
    def is_leader(self) -> bool:
        return True

    def events_dropped(self) -> int | None:
        return 0

    def leader_epoch(self) -> int | None:
        return 1


async def test_unfreeze_settings_are_set_shown_and_validated(admin: Api, deps: Deps) -> None:
    svc = await admin.ok("POST", "/services", json=engagelab_payload(unfreeze_after=600, probe_before_unfreeze=True))
    assert (svc["unfreeze_after"], svc["probe_before_unfreeze"], svc["frozen_until"]) == (600, True, None)
    plain = await admin.ok("POST", "/services", json=engagelab_payload())
    assert (plain["unfreeze_after"], plain["probe_before_unfreeze"]) == (None, False)
    patched = await admin.ok("PATCH", f"/services/{plain['id']}", json={"unfreeze_after": 60,
                                                                       "probe_before_unfreeze": True})
    assert (patched["unfreeze_after"], patched["probe_before_unfreeze"]) == (60, True)
    log = await admin.ok("GET", f"/services/{plain['id']}/status-log")
    assert log["items"][0]["data"]["changes"]["unfreeze_after"] == {"old": None, "new": 60}
    for bad in (9, 604_801, "60", 1.5):
        await admin.err("PATCH", f"/services/{svc['id']}", 400, "VALIDATION_ERROR", "unfreeze_after",
                        json={"unfreeze_after": bad})
        await admin.err("POST", "/services", 400, "VALIDATION_ERROR", "unfreeze_after",
                        json=engagelab_payload(unfreeze_after=bad))
    await admin.err("PATCH", f"/services/{svc['id']}", 400, "VALIDATION_ERROR", "probe_before_unfreeze",
                    json={"probe_before_unfreeze": "yes"})
    assert await deps.pool.fetchval("SELECT count(*) FROM services") == 2


async def test_openapi_states_the_unfreeze_settings(anon: Api) -> None:
    resp = await anon.client.get("/api/v1/openapi.json")
    doc = await resp.json()
    schemas = doc["components"]["schemas"]
    patch = schemas["ServicePatch"]["properties"]
    assert patch["probe_before_unfreeze"]["type"] == "boolean"
    after = [s for s in patch["unfreeze_after"]["anyOf"] if s.get("type") == "integer"][0]
    assert (after["minimum"], after["maximum"]) == (10, 604_800)
    assert "frozen_until" in schemas["Service"]["properties"]


async def test_a_timed_unfreeze_probes_first_and_stays_frozen_until_the_probe_passes(admin: Api, deps: Deps,
                                                                                       clock) -> None:
    pool, settings = deps.pool, deps.settings
    async with fake_esp(FakeEspConfig()) as (url, esp):
        svc = await admin.ok("POST", "/services", json=engagelab_payload(
            base_url=url, send_interval=1, credentials={"api_user": "acme", "api_key": "the-right-key-0001"},
            freeze_after=3, unfreeze_after=300, probe_before_unfreeze=True))
        service = uuid.UUID(svc["id"])
        await admin.ok("POST", "/alerts/rules", json={"name": "frozen", "kind": "service_frozen", "channel_ids": []})
        user = await make_user(pool, quota=8)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 8)
        campaign = await make_campaign(pool, user, planned=8)
        engine, sink = new_engine(settings, pool, clock, deps.box)
        evaluator = AlertEvaluator(pool, clock, _Leading())
        async with running(engine):
            await eventually(lambda: requests_answered(pool, 1), what="the first send")
            # The account's key changes at the provider: sends are refused (401) until it is fixed.
            esp.config.keys["acme"] = "a-new-key-0002"
            for n in (2, 3, 4):
                clock.advance(1)
                await eventually(lambda: requests_answered(pool, n), what=f"{n} requests")
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE")
            frozen_at = clock.now()
            row = await pool.fetchrow("SELECT abnormal_frozen, frozen_until FROM services WHERE id = $1", service)
            assert row["abnormal_frozen"] and row["frozen_until"] == frozen_at + timedelta(seconds=300)
            assert esp.probe_log == []

            # Due: the probe is refused, the service stays frozen with the probe's error.
            clock.advance(300)

            async def probed(n: int) -> bool:
                return len(esp.probe_log) >= n and await pool.fetchval(
                    "SELECT count(*) FROM service_status_log WHERE kind IN ('probe_failed', 'unfrozen')") >= n
            await eventually(lambda: probed(1), what="the first probe")
            assert esp.probe_log[0][1:] == ("acme", 401)
            row = await pool.fetchrow("SELECT abnormal_frozen, abnormal_reason, frozen_until, unfreeze_probes "
                                      "FROM services WHERE id = $1", service)
            assert row["abnormal_frozen"] and row["unfreeze_probes"] == 1
            assert row["abnormal_reason"] == "unfreeze probe failed: rejected (HTTP 401 code 40101)"
            assert row["frozen_until"] == clock.now() + probe_backoff(1)
            shown = await admin.ok("GET", f"/services/{service}")
            assert shown["abnormal_reason"] == row["abnormal_reason"] and shown["frozen_until"] is not None
            assert "probe_failed" in sink.kinds("service") and "service_frozen" in sink.kinds("alert")
            assert engine.state.services[service].abnormal_reason == row["abnormal_reason"]
            # The existing alert rule for frozen services sees it, with the probe's error.
            await evaluator.evaluate()
            alerts = await admin.ok("GET", "/alerts?state=open")
            assert [a["message"] for a in alerts["items"]] == [
                f"service {svc['name']} is frozen: unfreeze probe failed: rejected (HTTP 401 code 40101)"]

            # Not before the backoff; the key is fixed meanwhile, and the next probe passes.
            clock.advance(probe_backoff(1).total_seconds() / 2)
            await asyncio.sleep(0.3)
            assert len(esp.probe_log) == 1
            esp.config.keys["acme"] = "the-right-key-0001"
            clock.advance(probe_backoff(1).total_seconds() / 2)
            await eventually(lambda: probed(2), what="the second probe")
            assert esp.probe_log[1][1:] == ("acme", 200)
            await wait_status(pool, campaign, "running")
            for n in (5, 6, 7, 8):
                await eventually(lambda: requests_answered(pool, n), what=f"{n} requests")
                clock.advance(1)
            await wait_status(pool, campaign, "completed")
            await evaluator.evaluate()
            assert (await admin.ok("GET", "/alerts?state=open"))["items"] == []

        # The judge: the fake ESP's log. No send between the freeze (the 3rd refused request)
        # and the probe that passed; the rest after it.
        sends = [e for e in esp.log.entries() if e.api_user == "acme"]
        assert [e.outcome for e in sends] == ["sent"] + ["unauthorized"] * 3 + ["sent"] * 4
        passed_at = esp.probe_log[1][0]
        froze_at = sends[3].t
        assert [e for e in sends if froze_at < e.t < passed_at] == []
        assert all(e.t > passed_at for e in sends[4:])
        kinds = [r["kind"] for r in await pool.fetch(
            "SELECT kind FROM service_status_log WHERE service_id = $1 AND kind IN "
            "('frozen', 'probe_failed', 'unfrozen') ORDER BY id", service)]
        assert kinds == ["frozen", "probe_failed", "unfrozen"]
        row = await pool.fetchrow("SELECT abnormal_frozen, frozen_until, unfreeze_probes, consecutive_failures "
                                  "FROM services WHERE id = $1", service)
        assert tuple(row) == (False, None, 0, 0)
        await check_invariants(pool, esp, settings)


async def test_without_a_probe_a_timed_freeze_lifts_itself_and_an_admin_unfreeze_cancels_it(admin: Api,
                                                                                             deps: Deps,
                                                                                             clock) -> None:
    pool, settings = deps.pool, deps.settings
    async with fake_esp(FakeEspConfig()) as (url, esp):
        svc = await admin.ok("POST", "/services", json=engagelab_payload(
            base_url=url, send_interval=1, credentials={"api_user": "plain", "api_key": "the-right-key-0001"},
            freeze_after=2, unfreeze_after=60))
        service = uuid.UUID(svc["id"])
        user = await make_user(pool, quota=4)
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 4)
        campaign = await make_campaign(pool, user, planned=4)
        esp.config.keys["plain"] = "refused"
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await eventually(lambda: requests_answered(pool, 1), what="the first send")
            clock.advance(1)
            await wait_status(pool, campaign, "paused", "NO_AVAILABLE_SERVICE")
            esp.config.keys.clear()
            clock.advance(60)
            await wait_status(pool, campaign, "running")
            assert esp.probe_log == []  # no probe asked for
            for n in (3, 4):
                await eventually(lambda: requests_answered(pool, n), what=f"{n} requests")
                clock.advance(1)
            await wait_status(pool, campaign, "completed")
        assert await pool.fetchval("SELECT message FROM service_status_log WHERE kind = 'unfrozen'") == \
            "unfrozen: its timed freeze ended"
        await check_invariants(pool, esp, settings)


def test_failed_probes_back_off_from_a_minute_to_an_hour() -> None:
    minutes = [probe_backoff(k).total_seconds() / 60 for k in range(1, 10)]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_the_dashboard_service_detail_shows_the_timed_unfreeze() -> None:
    from tui.models import ServiceInfo
    from tui.panels.details import unfreeze_line

    assert unfreeze_line(ServiceInfo(id="s", name="el"), "UTC") is None
    line = unfreeze_line(ServiceInfo(id="s", name="el", unfreeze_after=300, probe_before_unfreeze=True,
                                     frozen_until="2026-11-23T04:05:00Z"), "UTC")
    assert line is not None and line.plain == ("an engine freeze lifts itself after 5m, if a credentials probe "
                                               "passes · due 11-23 04:05:00 UTC")
    plain = unfreeze_line(ServiceInfo(id="s", name="el", unfreeze_after=5400), "UTC")
    assert plain is not None and plain.plain == "an engine freeze lifts itself after 90m"
