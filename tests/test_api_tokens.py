"""Personal API tokens: shown once, hashed at rest, scoped, expiring, revocable at once."""

from __future__ import annotations

import hashlib

import pytest

from engine.live.event_stream import RedisStreamPublisher
from tests.conftest import Api
from tests.test_events_sse import open_stream, publisher  # noqa: F401  (fixture)
from tests.test_sse_revocation import _ends, flowing


async def test_create_use_list_and_revoke(admin: Api, deps) -> None:
    user, session = await admin.new_user("scripter")
    made = await session.ok("POST", "/me/tokens", json={"name": "nightly export", "scope": "write"})
    secret = made["token"]
    assert secret.startswith("edm_pat_") and made["scope"] == "write" and made["expires_at"] is None
    stored = await deps.pool.fetchrow("SELECT secret_hash, hint FROM api_tokens WHERE id = $1::uuid", made["id"])
    assert bytes(stored["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in str(dict(stored)) and len(stored["hint"]) < len(secret) // 3
    script = session.as_(secret)
    assert (await script.ok("GET", "/me"))["username"] == "scripter"
    await script.ok("POST", "/tags", json={"name": "from-a-script"}, expect=201)
    listed = await session.ok("GET", "/me/tokens")
    assert [t["name"] for t in listed["items"]] == ["nightly export"] and "token" not in listed["items"][0]
    assert secret not in str(listed)
    # Tokens cannot manage tokens or the password: a leaked one must not outlive its revocation.
    await script.err("POST", "/me/tokens", 403, "FORBIDDEN", json={"name": "child"})
    await script.err("POST", "/me/password", 403, "FORBIDDEN",
                     json={"old_password": "password-123", "new_password": "whatever-123"})
    # Another user cannot revoke it; its owner can, and it stops at once.
    _, other = await admin.new_user("other")
    await other.err("DELETE", f"/me/tokens/{made['id']}", 404, "NOT_FOUND")
    revoked = await session.ok("DELETE", f"/me/tokens/{made['id']}")
    assert revoked["revoked_at"] is not None
    await script.err("GET", "/me", 401, "UNAUTHORIZED")
    assert (await session.ok("GET", "/me/tokens"))["items"] == []
    # Disabling the owner ends their tokens too.
    again = (await session.ok("POST", "/me/tokens", json={"name": "again"}))["token"]
    await admin.ok("PATCH", f"/users/{user['id']}", json={"enabled": False})
    await session.as_(again).err("GET", "/me", 401, "UNAUTHORIZED")


async def test_read_scope_and_expiry(admin: Api, clock) -> None:
    _, session = await admin.new_user("reader")
    for days in (0, -1, 3651, 1.5, "7"):
        await session.err("POST", "/me/tokens", 400, "VALIDATION_ERROR", field="expires_in_days",
                          json={"name": "bad", "expires_in_days": days})
    await session.err("POST", "/me/tokens", 400, "VALIDATION_ERROR", field="scope",
                      json={"name": "x", "scope": "admin"})
    made = await session.ok("POST", "/me/tokens", json={"name": "dash", "expires_in_days": 1})
    assert made["scope"] == "read" and made["expires_at"].startswith("2026-11-24T04:00:00")
    reader = session.as_(made["token"])
    await reader.ok("GET", "/tags")
    await reader.err("POST", "/tags", 403, "FORBIDDEN", json={"name": "nope"})
    clock.advance(86_400 - 1)
    await reader.ok("GET", "/tags")
    clock.advance(1)
    await reader.err("GET", "/tags", 401, "UNAUTHORIZED")


async def test_an_admin_token_is_an_admin(admin: Api) -> None:
    made = await admin.ok("POST", "/me/tokens", json={"name": "ops", "scope": "read"})
    assert (await admin.as_(made["token"]).ok("GET", "/users"))["total"] == 1


async def test_revoking_a_token_closes_its_streams(admin: Api, publisher: RedisStreamPublisher, deps) -> None:
    deps.sse_recheck_seconds = 3600  # the push alone
    user, session = await admin.new_user("watcher")
    made = await session.ok("POST", "/me/tokens", json={"name": "tail"})
    async with flowing(publisher, user["id"]):
        stream = await open_stream(session.as_(made["token"]))
        kept = await open_stream(session)  # the login session's stream goes on
        await session.ok("DELETE", f"/me/tokens/{made['id']}")
        await _ends(stream)
        assert "event" in await kept.event()
        kept.response.close()


@pytest.mark.parametrize("bad", ["edm_pat_", "edm_pat_guessed-guessed-guessed-guessed-guessed"])
async def test_unknown_tokens_are_refused(anon: Api, bad: str) -> None:
    await anon.as_(bad).err("GET", "/me", 401, "UNAUTHORIZED", field="Authorization")
