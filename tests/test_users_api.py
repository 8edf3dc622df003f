"""Users, login, tokens and the quota ledger over the real API."""

from __future__ import annotations

import uuid

from tests.conftest import Api


async def test_login_me_and_user_admin(admin: Api, anon: Api) -> None:
    user, as_user = await admin.new_user("alice", quota=100)
    assert user["quota_remaining"] == 100 and user["role"] == "user"
    me = await as_user.ok("GET", "/me")
    assert me["username"] == "alice" and me["quota_remaining"] == 100 and me["last_login_at"] is not None
    listed = await admin.ok("GET", "/users?limit=10")
    assert {u["username"] for u in listed["items"]} == {"root", "alice"} and listed["total"] == 2
    got = await admin.ok("GET", f"/users/{user['id']}")
    assert got["email"] == "alice@example.com"
    assert "password" not in str(got) and "password_hash" not in got
    updated = await admin.ok("PATCH", f"/users/{user['id']}", json={"email": "a2@example.com"})
    assert updated["email"] == "a2@example.com"


async def test_wrong_password_and_throttle(admin: Api, anon: Api, deps) -> None:
    await admin.new_user("bob")
    await anon.err("POST", "/auth/login", 401, "INVALID_CREDENTIALS", json={"username": "bob", "password": "nope-nope"})
    for _ in range(deps.settings.login_max_failures - 1):
        await anon.call("POST", "/auth/login", json={"username": "bob", "password": "nope-nope"})
    # Even the right password is refused while the account is throttled.
    await anon.err("POST", "/auth/login", 429, "TOO_MANY_ATTEMPTS", json={"username": "bob", "password": "password-123"})


async def test_disable_and_password_reset_kill_tokens(admin: Api) -> None:
    user, phone = await admin.new_user("carol")
    laptop = await admin.as_(None).login("carol", "password-123")  # two devices at once
    await phone.ok("GET", "/me")
    await laptop.ok("GET", "/me")
    await admin.ok("PATCH", f"/users/{user['id']}", json={"password": "another-password"})
    await phone.err("GET", "/me", 401, "UNAUTHORIZED")
    await laptop.err("GET", "/me", 401, "UNAUTHORIZED")
    fresh = await admin.as_(None).login("carol", "another-password")
    await fresh.ok("GET", "/me")
    await admin.ok("PATCH", f"/users/{user['id']}", json={"enabled": False})
    await fresh.err("GET", "/me", 401, "UNAUTHORIZED")
    await admin.as_(None).err("POST", "/auth/login", 401, "INVALID_CREDENTIALS",
                              json={"username": "carol", "password": "another-password"})


async def test_users_cannot_reach_admin_routes(admin: Api) -> None:
    user, as_user = await admin.new_user("dave")
    await as_user.err("GET", "/users", 403, "FORBIDDEN")
    await as_user.err("POST", f"/users/{user['id']}/quota", 403, "FORBIDDEN", json={"delta": 5, "reason": "x"})
    await as_user.as_(None).err("GET", "/me", 401, "UNAUTHORIZED", field="Authorization")
    await as_user.as_("not-a-jwt").err("GET", "/me", 401, "UNAUTHORIZED")


async def test_quota_adjust_and_ledger_balances(admin: Api, deps) -> None:
    user, as_user = await admin.new_user("erin", quota=10)
    await admin.ok("POST", f"/users/{user['id']}/quota", json={"delta": 15, "reason": "top-up"})
    await admin.ok("POST", f"/users/{user['id']}/quota", json={"delta": -5, "reason": "correction"})
    await admin.err("POST", f"/users/{user['id']}/quota", 409, "QUOTA_INSUFFICIENT", json={"delta": -21, "reason": "too much"})
    log = await admin.ok("GET", f"/users/{user['id']}/quota-log")
    assert [e["delta"] for e in log["items"]] == [-5, 15, 10]
    assert log["items"][0]["balance_after"] == 20
    assert (await as_user.ok("GET", "/me"))["quota_remaining"] == 20
    assert (await as_user.ok("GET", "/me/quota-log"))["total"] == 3
    total = await deps.pool.fetchval("SELECT sum(delta) FROM quota_log WHERE user_id = $1", __import__("uuid").UUID(user["id"]))
    assert total == 20


async def test_user_validation(admin: Api, deps) -> None:
    before = await deps.pool.fetchval("SELECT count(*) FROM users")
    bad = [
        ({"username": "x", "email": "x@example.com", "password": "password-123"}, "username"),
        ({"username": "okname", "email": "not-an-email", "password": "password-123"}, "email"),
        ({"username": "okname", "email": "x@example.com", "password": "short"}, "password"),
        ({"username": "okname", "email": "x@example.com", "password": "password-123", "role": "god"}, "role"),
        ({"username": "okname", "email": "x@example.com", "password": "password-123", "quota": -1}, "quota"),
        ({"username": "okname", "email": "x@example.com", "password": "password-123", "extra": 1}, "extra"),
        ({"email": "x@example.com", "password": "password-123"}, "username"),
    ]
    for payload, field in bad:
        await admin.err("POST", "/users", 400, "VALIDATION_ERROR", field=field, json=payload)
    await admin.err("POST", "/users", 400, "VALIDATION_ERROR", field="body", data=b"{not json",
                    headers={"Content-Type": "application/json"})
    await admin.err("POST", "/users", 409, "CONFLICT", field="username",
                    json={"username": "ROOT", "email": "r@example.com", "password": "password-123"})
    await admin.err("GET", "/users/not-a-uuid", 400, "VALIDATION_ERROR", field="id")
    await admin.err("GET", "/users/00000000-0000-0000-0000-000000000000", 404, "NOT_FOUND")
    await admin.err("GET", "/users?limit=0", 400, "VALIDATION_ERROR", field="limit")
    await admin.err("GET", "/users?limit=abc", 400, "VALIDATION_ERROR", field="limit")
    assert await deps.pool.fetchval("SELECT count(*) FROM users") == before


async def test_admin_cannot_disable_their_own_account(admin: Api, deps) -> None:
    me = await admin.ok("GET", "/me")
    path = f"/users/{me['id']}"
    row = "SELECT email, enabled, token_version, updated_at FROM users WHERE id = $1"
    before = await deps.pool.fetchrow(row, uuid.UUID(me["id"]))
    err = await admin.err("PATCH", path, 409, "INVALID_STATE", field="enabled", json={"enabled": False})
    assert "own" in err["message"]
    # Nothing of a refused update is written, other members included.
    await admin.err("PATCH", path, 409, "INVALID_STATE", field="enabled",
                    json={"enabled": False, "email": "elsewhere@example.com", "password": "new-password-1"})
    assert await deps.pool.fetchrow(row, uuid.UUID(me["id"])) == before
    await admin.ok("GET", "/me")  # the token still works
    assert (await admin.ok("PATCH", path, json={"enabled": True, "email": "root2@example.com"}))["enabled"] is True
    # Another administrator may disable this one.
    _, other_admin = await admin.new_user("second-admin", role="admin")
    assert (await other_admin.ok("PATCH", path, json={"enabled": False}))["enabled"] is False
    await admin.err("GET", "/me", 401, "UNAUTHORIZED")


async def test_emails_with_control_characters_are_refused(admin: Api, deps) -> None:
    user, _ = await admin.new_user("frank")
    before = await deps.pool.fetchval("SELECT count(*) FROM users")
    for email in ("a\x00b@example.com", "ab@exa\x00mple.com", "a\x01b@example.com", "ab@example.com\n",
                  "a" * 65 + "@example.com", "ab@" + "e" * 250 + ".com"):
        await admin.err("POST", "/users", 400, "VALIDATION_ERROR", field="email",
                        json={"username": "newbie", "email": email, "password": "password-123"})
        await admin.err("PATCH", f"/users/{user['id']}", 400, "VALIDATION_ERROR", field="email", json={"email": email})
    assert await deps.pool.fetchval("SELECT count(*) FROM users") == before
    assert (await admin.ok("GET", f"/users/{user['id']}"))["email"] == "frank@example.com"
