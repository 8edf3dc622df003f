"""Sending services over the real API: configuration, live state, manual quota, status log, secrets."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from engine.infra.clock import FakeClock
from engine.infra.queries import Q
from engine.store.services import open_credentials
from tests.conftest import Api
from tests.service_factory import (
    ENGAGELAB_KEY,
    SMTP_PASSWORD,
    EngineRecorder,
    engagelab_payload,
    make_service,
    smtp_payload,
)

UTC = timezone.utc
MISSING = "00000000-0000-0000-0000-000000000000"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def status_kinds(admin: Api, service_id: str) -> list[str]:
    log = await admin.ok("GET", f"/services/{service_id}/status-log?limit=100")
    return [e["kind"] for e in log["items"]]


async def count(deps: Any, table: str) -> int:
    return await deps.pool.fetchval(f"SELECT count(*) FROM {table}")


async def test_create_engagelab_service_with_live_state(admin: Api, clock: FakeClock) -> None:
    # The fixture clock is 2026-11-23 04:00 UTC = 12:00 in Shanghai: today's 02:00 reset has passed.
    svc = await admin.ok("POST", "/services", json=engagelab_payload(name="Main EDM", domain="Mail.Example.com"))
    assert svc["name"] == "Main EDM" and svc["provider"] == "engagelab" and svc["domain"] == "mail.example.com"
    assert svc["credentials"] == {"api_user": "edm_marketing_user", "api_key": "…b868"}
    assert svc["daily_quota"] == 1000 and svc["remaining_today"] == 1000 and svc["used_today"] == 0
    assert svc["reset_time"] == "02:00" and svc["send_interval"] == 5 and svc["enabled"] is True
    assert svc["request_timeout"] == 30  # the documented default
    assert at(svc["quota_day_start"]) == datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    assert at(svc["next_reset_at"]) == datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    assert svc["abnormal_frozen"] is False and svc["abnormal_reason"] is None
    assert svc["consecutive_failures"] == 0 and svc["last_request_at"] is None and svc["throttled_until"] is None
    assert await admin.ok("GET", f"/services/{svc['id']}") == svc
    listed = await admin.ok("GET", "/services")
    assert listed["total"] == 1 and listed["items"] == [svc]
    log = await admin.ok("GET", f"/services/{svc['id']}/status-log")
    assert [e["kind"] for e in log["items"]] == ["created"]
    assert log["items"][0]["data"]["credentials"]["api_key"] == "…b868"


async def test_create_before_todays_reset_starts_the_day_yesterday(admin: Api) -> None:
    # 12:00 in Shanghai, reset at 13:00: the quota day opened yesterday at 13:00 and ends in an hour.
    svc = await make_service(admin, reset_time="13:00")
    assert at(svc["quota_day_start"]) == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    assert at(svc["next_reset_at"]) == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


async def test_create_smtp_service(admin: Api) -> None:
    svc = await admin.ok("POST", "/services", json=smtp_payload(name="Relay"))
    assert svc["provider"] == "smtp" and svc["base_url"] is None
    assert svc["credentials"] == {"host": "127.0.0.1", "port": 2525, "username": "mailer",
                                  "password": "…7731", "tls": "none"}


async def test_list_is_paged_by_name(admin: Api) -> None:
    for name in ("charlie", "Alpha", "bravo"):
        await make_service(admin, name=name)
    first = await admin.ok("GET", "/services?limit=2")
    assert [s["name"] for s in first["items"]] == ["Alpha", "bravo"] and first["total"] == 3
    rest = await admin.ok("GET", "/services?limit=2&offset=2")
    assert [s["name"] for s in rest["items"]] == ["charlie"]


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({k: v for k, v in engagelab_payload().items() if k != "name"}, "name"),
    (engagelab_payload(name=""), "name"),
    (engagelab_payload(name=" padded"), "name"),
    (engagelab_payload(provider="ses"), "provider"),
    (engagelab_payload(domain="not a host"), "domain"),
    (engagelab_payload(domain="-bad.example.com"), "domain"),
    (engagelab_payload(domain="localhost"), "domain"),
    (engagelab_payload(domain="example.com\n"), "domain"),
    (engagelab_payload(credentials={"api_user": "u"}), "credentials.api_key"),
    (engagelab_payload(credentials={"api_user": "u", "api_key": "k", "region": "x"}), "credentials.region"),
    (engagelab_payload(credentials={"api_user": 7, "api_key": "k"}), "credentials.api_user"),
    (engagelab_payload(credentials={"api_user": "", "api_key": "k"}), "credentials.api_user"),
    (engagelab_payload(credentials=smtp_payload()["credentials"]), "credentials.host"),
    (engagelab_payload(credentials="api_user:key"), "credentials"),
    (smtp_payload(credentials={**smtp_payload()["credentials"], "port": 0}), "credentials.port"),
    (smtp_payload(credentials={**smtp_payload()["credentials"], "port": 70000}), "credentials.port"),
    (smtp_payload(credentials={**smtp_payload()["credentials"], "tls": "ssl"}), "credentials.tls"),
    (smtp_payload(credentials={k: v for k, v in smtp_payload()["credentials"].items() if k != "tls"}),
     "credentials.tls"),
    (smtp_payload(credentials={**smtp_payload()["credentials"], "host": "bad host"}), "credentials.host"),
    (smtp_payload(credentials=engagelab_payload()["credentials"]), "credentials.api_user"),
    (engagelab_payload(base_url="ftp://files.example.com"), "base_url"),
    (engagelab_payload(base_url="not a url"), "base_url"),
    (engagelab_payload(daily_quota=0), "daily_quota"),
    (engagelab_payload(daily_quota=10_000_001), "daily_quota"),
    (engagelab_payload(daily_quota="5"), "daily_quota"),
    (engagelab_payload(daily_quota=1.5), "daily_quota"),
    (engagelab_payload(reset_time="24:00"), "reset_time"),
    (engagelab_payload(reset_time="7:00"), "reset_time"),
    (engagelab_payload(reset_time="12:60"), "reset_time"),
    (engagelab_payload(reset_time="12:00:00"), "reset_time"),
    (engagelab_payload(send_interval=0), "send_interval"),
    (engagelab_payload(send_interval=86_401), "send_interval"),
    (engagelab_payload(enabled="yes"), "enabled"),
    (engagelab_payload(request_timeout=0), "request_timeout"),
    (engagelab_payload(request_timeout=301), "request_timeout"),
    (engagelab_payload(colour="blue"), "colour"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_CREATES)
async def test_create_validation_writes_nothing(admin: Api, deps: Any, payload: dict[str, Any], field: str) -> None:
    await admin.err("POST", "/services", 400, "VALIDATION_ERROR", field=field, json=payload)
    assert await count(deps, "services") == 0
    assert await count(deps, "service_status_log") == 0


async def test_names_are_unique_case_insensitively(admin: Api, deps: Any) -> None:
    await make_service(admin, name="Main")
    await admin.err("POST", "/services", 409, "CONFLICT", field="name", json=engagelab_payload(name="MAIN"))
    other = await make_service(admin, name="Other")
    await admin.err("PATCH", f"/services/{other['id']}", 409, "CONFLICT", field="name", json={"name": "main"})
    # Renaming to a different case of its own name is fine.
    assert (await admin.ok("PATCH", f"/services/{other['id']}", json={"name": "OTHER"}))["name"] == "OTHER"
    assert await count(deps, "services") == 2


async def test_patch_fields_quota_difference_and_reset_time(admin: Api, deps: Any) -> None:
    svc = await make_service(admin, daily_quota=1000)
    sid = svc["id"]
    await admin.ok("PUT", f"/services/{sid}/remaining", json={"remaining": 300, "reason": "used elsewhere"})
    up = await admin.ok("PATCH", f"/services/{sid}", json={"daily_quota": 1500, "send_interval": 10})
    assert up["daily_quota"] == 1500 and up["remaining_today"] == 800 and up["send_interval"] == 10
    down = await admin.ok("PATCH", f"/services/{sid}", json={"daily_quota": 100})
    assert down["remaining_today"] == 0  # 800 - 1400 would be negative
    # It is 12:00 in Shanghai. Moving the reset to 10:30 (already passed today) counts today's
    # reset as done: no extra reset now, the next one is tomorrow at 10:30.
    moved = await admin.ok("PATCH", f"/services/{sid}", json={"reset_time": "10:30", "base_url": None})
    assert moved["reset_time"] == "10:30" and moved["base_url"] is None and moved["remaining_today"] == 0
    assert at(moved["quota_day_start"]) == datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
    assert at(moved["next_reset_at"]) == datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    # Moving it to 15:00 (later today) keeps the day that opened at 10:30; it ends at 15:00.
    later = await admin.ok("PATCH", f"/services/{sid}", json={"reset_time": "15:00"})
    assert later["quota_day_start"] == moved["quota_day_start"]
    assert at(later["next_reset_at"]) == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    log = (await admin.ok("GET", f"/services/{sid}/status-log"))["items"]
    assert [e["kind"] for e in log] == ["updated", "updated", "updated", "updated", "manual_adjust", "created"]
    assert log[0]["data"]["changes"] == {"reset_time": {"old": "10:30", "new": "15:00"}}
    assert log[1]["data"]["changes"]["reset_time"] == {"old": "02:00", "new": "10:30"}
    assert at(log[1]["data"]["changes"]["quota_day_start"]["new"]) == datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
    assert "no reset now" in log[1]["message"] and log[1]["data"]["changes"]["base_url"]["new"] is None
    assert log[2]["data"]["changes"]["remaining_today"] == {"old": 800, "new": 0}
    assert log[3]["data"]["changes"]["daily_quota"] == {"old": 1000, "new": 1500}


async def test_patch_credentials_are_replaced_whole(admin: Api, deps: Any) -> None:
    svc = await make_service(admin)
    sid = svc["id"]
    before = await deps.pool.fetchrow(Q["services.sealed"], uuid.UUID(sid))
    await admin.err("PATCH", f"/services/{sid}", 400, "VALIDATION_ERROR", field="credentials.api_user",
                    json={"credentials": {"api_key": "only-the-key-1234567"}})
    # Well-formed, but at odds with the stored provider: a conflict.
    await admin.err("PATCH", f"/services/{sid}", 409, "CONFLICT", field="credentials",
                    json={"provider": "smtp"})
    await admin.err("PATCH", f"/services/{sid}", 409, "CONFLICT", field="credentials",
                    json={"credentials": smtp_payload()["credentials"]})
    await admin.err("PATCH", f"/services/{sid}", 400, "VALIDATION_ERROR", field="daily_quota",
                    json={"daily_quota": -1, "name": "renamed"})
    await admin.err("PATCH", f"/services/{sid}", 400, "VALIDATION_ERROR", field="name", json={"name": None})
    after_bad = await deps.pool.fetchrow(Q["services.sealed"], uuid.UUID(sid))
    assert after_bad["credentials"] == before["credentials"]
    assert await status_kinds(admin, sid) == ["created"]
    new = await admin.ok("PATCH", f"/services/{sid}",
                         json={"credentials": {"api_user": "other_user", "api_key": "NEWKEY-abcdefgh-9999"}})
    assert new["credentials"] == {"api_user": "other_user", "api_key": "…9999"}
    row = await deps.pool.fetchrow(Q["services.sealed"], uuid.UUID(sid))
    assert open_credentials(deps.box, row) == {"api_user": "other_user", "api_key": "NEWKEY-abcdefgh-9999"}
    switched = await admin.ok("PATCH", f"/services/{sid}", json={"provider": "smtp",
                                                                 "credentials": smtp_payload()["credentials"]})
    assert switched["provider"] == "smtp" and switched["credentials"]["password"] == "…7731"


async def test_patch_without_changes_logs_nothing(admin: Api) -> None:
    svc = await make_service(admin)
    same = await admin.ok("PATCH", f"/services/{svc['id']}",
                          json={"daily_quota": svc["daily_quota"], "credentials": engagelab_payload()["credentials"]})
    assert same == svc
    assert await admin.ok("PATCH", f"/services/{svc['id']}", json={}) == svc
    assert await status_kinds(admin, svc["id"]) == ["created"]


async def test_enable_disable_and_status_log(admin: Api) -> None:
    svc = await make_service(admin)
    sid = svc["id"]
    assert (await admin.ok("POST", f"/services/{sid}/disable"))["enabled"] is False
    assert (await admin.ok("POST", f"/services/{sid}/disable"))["enabled"] is False  # no second row
    assert (await admin.ok("POST", f"/services/{sid}/enable"))["enabled"] is True
    await admin.ok("PATCH", f"/services/{sid}", json={"enabled": False})
    assert await status_kinds(admin, sid) == ["disabled", "updated", "enabled", "disabled", "created"]
    page = await admin.ok("GET", f"/services/{sid}/status-log?limit=2&offset=1")
    assert [e["kind"] for e in page["items"]] == ["updated", "enabled"] and page["total"] == 5


async def test_manual_remaining_is_logged_with_operator(admin: Api, deps: Any) -> None:
    svc = await make_service(admin, daily_quota=1000)
    sid = svc["id"]
    got = await admin.ok("PUT", f"/services/{sid}/remaining", json={"remaining": 42, "reason": "provider said so"})
    assert got["remaining_today"] == 42 and got["daily_quota"] == 1000
    entry = (await admin.ok("GET", f"/services/{sid}/status-log"))["items"][0]
    root = await deps.pool.fetchval("SELECT id FROM users WHERE username = 'root'")
    assert entry["kind"] == "manual_adjust" and entry["operator_id"] == str(root)
    assert entry["data"]["old"] == 1000 and entry["data"]["new"] == 42
    assert "provider said so" in entry["message"]
    for body, field in [({"remaining": -1, "reason": "x"}, "remaining"), ({"remaining": 5}, "reason"),
                        ({"remaining": 5, "reason": ""}, "reason"), ({"remaining": "5", "reason": "x"}, "remaining")]:
        await admin.err("PUT", f"/services/{sid}/remaining", 400, "VALIDATION_ERROR", field=field, json=body)
    assert (await admin.ok("GET", f"/services/{sid}"))["remaining_today"] == 42
    assert await count(deps, "service_status_log") == 2


async def test_unknown_and_malformed_ids(admin: Api) -> None:
    for method, suffix, body in [("GET", "", None), ("PATCH", "", {"send_interval": 3}), ("POST", "/enable", None),
                                 ("POST", "/disable", None), ("GET", "/status-log", None),
                                 ("PUT", "/remaining", {"remaining": 1, "reason": "x"})]:
        await admin.err(method, f"/services/{MISSING}{suffix}", 404, "NOT_FOUND", json=body)
        await admin.err(method, f"/services/nope{suffix}", 400, "VALIDATION_ERROR", field="id", json=body)


async def test_users_are_forbidden_on_every_service_route(admin: Api, deps: Any) -> None:
    svc = await make_service(admin)
    _, as_user = await admin.new_user("mallory")
    sid = svc["id"]
    for method, path, body in [
        ("POST", "/services", engagelab_payload()),
        ("GET", "/services", None),
        ("GET", f"/services/{sid}", None),
        ("PATCH", f"/services/{sid}", {"daily_quota": 5}),
        ("POST", f"/services/{sid}/enable", None),
        ("POST", f"/services/{sid}/disable", None),
        ("PUT", f"/services/{sid}/remaining", {"remaining": 1, "reason": "x"}),
        ("GET", f"/services/{sid}/status-log", None),
    ]:
        await as_user.err(method, path, 403, "FORBIDDEN", json=body)
    assert await count(deps, "services") == 1 and await status_kinds(admin, sid) == ["created"]


async def test_engine_is_told_once_per_change(admin: Api, deps: Any) -> None:
    engine = EngineRecorder()
    deps.engine = engine
    svc = await make_service(admin)
    sid = uuid.UUID(svc["id"])
    await admin.ok("PATCH", f"/services/{sid}", json={"send_interval": 9})
    await admin.ok("PATCH", f"/services/{sid}", json={"send_interval": 9})  # no change, no call
    await admin.ok("POST", f"/services/{sid}/disable")
    await admin.ok("POST", f"/services/{sid}/disable")  # already disabled, no call
    await admin.ok("POST", f"/services/{sid}/enable")
    await admin.ok("PUT", f"/services/{sid}/remaining", json={"remaining": 3, "reason": "x"})
    await admin.err("PATCH", f"/services/{sid}", 400, "VALIDATION_ERROR", json={"send_interval": 0})
    assert engine.calls == [("services_changed", sid)] * 4 + [("remaining_set", sid)]


async def test_secrets_never_leave_whole(admin: Api, deps: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def record(method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {admin.token}"}
        resp = await admin.client.request(method, "/api/v1" + path, json=body, headers=headers)
        text = await resp.text()
        bodies.append(text)
        return json.loads(text)

    created = (await record("POST", "/services", engagelab_payload(name="Secretive")))["data"]
    smtp = (await record("POST", "/services", smtp_payload()))["data"]
    sid = created["id"]
    other_key = "ROTATED-engagelab-key-0042"
    await record("GET", "/services")
    await record("GET", f"/services/{sid}")
    await record("GET", f"/services/{smtp['id']}")
    await record("PATCH", f"/services/{sid}", {"credentials": {"api_user": "u2", "api_key": other_key}})
    await record("PATCH", f"/services/{sid}", {"credentials": {"api_user": "u2", "api_key": ENGAGELAB_KEY}})
    # Rejected inputs that carry the secret must not echo it either.
    await record("PATCH", f"/services/{sid}", {"credentials": {"api_user": ENGAGELAB_KEY, "api_key": 5}})
    await record("PATCH", f"/services/{sid}", {"credentials": {"api_key": ENGAGELAB_KEY, "x": ENGAGELAB_KEY}})
    await record("POST", "/services", engagelab_payload(name="secretive"))  # name conflict
    await record("POST", "/services", smtp_payload(credentials={**smtp_payload()["credentials"], "port": "x"}))
    await record("POST", f"/services/{sid}/disable")
    await record("POST", f"/services/{sid}/enable")
    await record("PUT", f"/services/{sid}/remaining", {"remaining": 7, "reason": "check"})
    await record("GET", f"/services/{sid}/status-log")
    await record("GET", f"/services/{smtp['id']}/status-log")
    user, _ = await admin.new_user("watcher")
    await record("PUT", f"/users/{user['id']}/services", {"service_ids": [sid, smtp["id"]]})
    await record("GET", f"/users/{user['id']}/services")

    assert len(bodies) == 18 and all(b for b in bodies)
    for secret in (ENGAGELAB_KEY, SMTP_PASSWORD, other_key):
        assert not any(secret in b for b in bodies), secret
        assert secret not in caplog.text, secret
        for row in await deps.pool.fetch("SELECT credentials, credentials_hint::text AS hint FROM services"):
            assert secret not in row["credentials"] and secret not in row["hint"]
        assert not await deps.pool.fetchval(
            "SELECT count(*) FROM service_status_log WHERE strpos(data::text, $1) > 0 OR strpos(message, $1) > 0",
            secret)
    # Sealed, not lost: the engine gets the whole secret back.
    row = await deps.pool.fetchrow(Q["services.sealed"], uuid.UUID(sid))
    assert open_credentials(deps.box, row) == {"api_user": "u2", "api_key": ENGAGELAB_KEY}


async def test_request_timeout_is_set_per_service(admin: Api) -> None:
    svc = await admin.ok("POST", "/services", json=engagelab_payload(request_timeout=5))
    assert svc["request_timeout"] == 5
    patched = await admin.ok("PATCH", f"/services/{svc['id']}", json={"request_timeout": 12})
    assert patched["request_timeout"] == 12
    await admin.err("PATCH", f"/services/{svc['id']}", 400, "VALIDATION_ERROR", field="request_timeout",
                    json={"request_timeout": "12"})
    assert (await admin.ok("GET", f"/services/{svc['id']}"))["request_timeout"] == 12
