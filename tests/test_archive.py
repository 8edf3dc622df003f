"""Deleting services and users: 409 while in use, otherwise archived with history kept."""

from __future__ import annotations

import uuid

from tests.campaign_factory import make_contacts, make_sender_and_template
from tests.conftest import Api
from tests.service_factory import make_service


async def _campaign(admin: Api, deps, user: dict, api: Api) -> str:
    await make_contacts(deps.pool, user["id"], ["a@example.com"])
    sender_id, template_id = await make_sender_and_template(api)
    made = await api.ok("POST", "/campaigns", json={"name": "c", "sender_id": sender_id,
                                                    "template_ids": [template_id]})
    return made["id"]


async def test_a_service_in_use_answers_409_then_archives_and_restores(admin: Api, deps) -> None:
    svc = await make_service(admin, name="Main EDM")
    user, api = await admin.new_user("ann", quota=5)
    await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [svc["id"]]})
    campaign_id = await _campaign(admin, deps, user, api)
    await deps.pool.execute("UPDATE campaigns SET status = 'running' WHERE id = $1", uuid.UUID(campaign_id))
    err = await admin.err("DELETE", f"/services/{svc['id']}", 409, "SERVICE_IN_USE", field="id")
    assert err["details"]["campaigns"] == [campaign_id] and "campaign" in err["message"]
    assert (await admin.ok("GET", f"/services/{svc['id']}"))["enabled"] is True
    await deps.pool.execute("UPDATE campaigns SET status = 'cancelled' WHERE id = $1", uuid.UUID(campaign_id))
    archived = await admin.ok("DELETE", f"/services/{svc['id']}")
    assert archived["id"] == svc["id"] and archived["archived_at"] is not None
    # Gone from the API's point of view; listed only among the archived, history kept.
    await admin.err("GET", f"/services/{svc['id']}", 404, "NOT_FOUND")
    await admin.err("PATCH", f"/services/{svc['id']}", 404, "NOT_FOUND", json={"daily_quota": 5})
    await admin.err("POST", f"/services/{svc['id']}/enable", 404, "NOT_FOUND")
    assert (await admin.ok("GET", "/services"))["items"] == []
    shelf = (await admin.ok("GET", "/services?archived=true"))["items"]
    assert [(s["name"], s["enabled"]) for s in shelf] == [("Main EDM", False)]
    assert (await admin.ok("GET", f"/users/{user['id']}/services"))["service_ids"] == []
    kinds = [e["message"] for e in (await admin.ok("GET", f"/services/{svc['id']}/status-log"))["items"]]
    assert kinds[:2] == ["service archived", "service disabled (archived)"]
    await admin.err("DELETE", f"/services/{svc['id']}", 404, "NOT_FOUND")
    await admin.err("PUT", f"/users/{user['id']}/services", 404, "NOT_FOUND", field="service_ids",
                    json={"service_ids": [svc["id"]]})
    # The name stays taken while archived; restoring brings it back, disabled.
    await admin.err("POST", "/services", 409, "CONFLICT", field="name", json={
        **{k: v for k, v in svc.items() if k in ("provider", "domain", "daily_quota", "reset_time", "send_interval")},
        "name": "Main EDM", "credentials": {"api_user": "u", "api_key": "k"}})
    restored = await admin.ok("POST", f"/services/{svc['id']}/restore")
    assert restored["name"] == "Main EDM" and restored["enabled"] is False
    assert [s["name"] for s in (await admin.ok("GET", "/services"))["items"]] == ["Main EDM"]
    await admin.err("POST", f"/services/{svc['id']}/restore", 409, "INVALID_STATE")


async def test_a_user_with_unfinished_campaigns_answers_409_then_archives(admin: Api, deps) -> None:
    user, api = await admin.new_user("bea", quota=5)
    campaign_id = await _campaign(admin, deps, user, api)
    token = (await api.ok("POST", "/me/tokens", json={"name": "script"}))["token"]
    err = await admin.err("DELETE", f"/users/{user['id']}", 409, "USER_HAS_CAMPAIGNS", field="id")
    assert err["details"]["campaigns"] == [campaign_id]
    await api.ok("POST", f"/campaigns/{campaign_id}/cancel")
    gone = await admin.ok("DELETE", f"/users/{user['id']}")
    assert gone["id"] == user["id"] and gone["archived_at"] is not None
    assert [u["username"] for u in (await admin.ok("GET", "/users"))["items"]] == ["root"]
    await admin.err("GET", f"/users/{user['id']}", 404, "NOT_FOUND")
    await admin.err("PATCH", f"/users/{user['id']}", 404, "NOT_FOUND", json={"enabled": True})
    row = await deps.pool.fetchrow("SELECT username, enabled, archived_at FROM users WHERE id = $1",
                                   uuid.UUID(user["id"]))
    assert row["username"] == "bea" and row["enabled"] is False and row["archived_at"] is not None
    await api.err("GET", "/me", 401, "UNAUTHORIZED")
    await api.as_(token).err("GET", "/me", 401, "UNAUTHORIZED")
    await api.as_(None).err("POST", "/auth/login", 401, "INVALID_CREDENTIALS",
                            json={"username": "bea", "password": "password-123"})
    # History stays: the ledger and the campaign still resolve.
    assert await deps.pool.fetchval("SELECT count(*) FROM quota_log WHERE user_id = $1", uuid.UUID(user["id"])) >= 2
    assert (await admin.ok("GET", f"/campaigns/{campaign_id}"))["status"] == "cancelled"
    await admin.err("DELETE", f"/users/{user['id']}", 404, "NOT_FOUND")


async def test_nobody_deletes_themselves_so_an_admin_always_remains(admin: Api) -> None:
    # The only caller who could delete the last enabled admin is that admin: refused.
    me = await admin.ok("GET", "/me")
    await admin.err("DELETE", f"/users/{me['id']}", 409, "INVALID_STATE", field="id")
    other, as_other = await admin.new_user("ops2", role="admin")
    await as_other.err("DELETE", f"/users/{other['id']}", 409, "INVALID_STATE", field="id")
    assert (await as_other.ok("DELETE", f"/users/{me['id']}"))["id"] == me["id"]
    await admin.err("GET", "/me", 401, "UNAUTHORIZED")
