"""Users' token state is reused for a second between requests, and whatever ends tokens drops
it at once: in this process directly, in the others over the revocation push."""

from __future__ import annotations

import uuid

from api.auth_cache import AuthCache
from api.revocation import CHANNEL
from tests.conftest import Api
from tests.live_support import eventually


class Ticks:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def _cached(deps, ttl: float = 5.0) -> Ticks:
    ticks = Ticks()
    deps.auth_states = AuthCache(ttl, ticks)
    return ticks


async def test_a_recent_read_is_reused_within_the_ttl_and_read_again_after(admin: Api, deps) -> None:
    ticks = await _cached(deps)
    user, api = await admin.new_user()
    await api.ok("GET", "/me")
    # A change made outside the API (no announcement): the cached read holds until the ttl ends.
    await deps.pool.execute("UPDATE users SET enabled = false WHERE id = $1", uuid.UUID(user["id"]))
    await api.ok("GET", "/me/quota-log")
    ticks.t += 5.0
    await api.err("GET", "/me", 401, "UNAUTHORIZED")


async def test_disabling_through_the_api_ends_the_token_at_once_despite_the_cache(admin: Api, deps) -> None:
    await _cached(deps, ttl=3600)
    user, api = await admin.new_user()
    await api.ok("GET", "/me")
    await admin.ok("PATCH", f"/users/{user['id']}", json={"enabled": False})
    await api.err("GET", "/me", 401, "UNAUTHORIZED")


async def test_a_password_change_ends_the_other_sessions_at_once(admin: Api, deps) -> None:
    await _cached(deps, ttl=3600)
    user, api = await admin.new_user(password="password-123")
    other = await admin.login(user["username"], "password-123")
    await other.ok("GET", "/me")
    await api.ok("POST", "/me/password", json={"old_password": "password-123", "new_password": "another-pass-456"})
    await other.err("GET", "/me", 401, "UNAUTHORIZED")


async def test_the_push_from_another_process_drops_the_cached_state(admin: Api, deps) -> None:
    await _cached(deps, ttl=3600)
    user, api = await admin.new_user()
    await api.ok("GET", "/me")
    uid = uuid.UUID(user["id"])
    # Another API process disabled the user and announced it; this one only hears the push.
    await deps.pool.execute("UPDATE users SET enabled = false WHERE id = $1", uid)
    await deps.redis.publish(CHANNEL, str(uid))
    await eventually(lambda: not deps.auth_states.get(uid)[0], "cache entry dropped by the push")
    await api.err("GET", "/me", 401, "UNAUTHORIZED")


def test_a_read_that_started_before_a_revocation_is_not_kept() -> None:
    ticks = Ticks()
    cache = AuthCache(60, ticks)
    uid = uuid.uuid4()
    read_at = ticks()  # a request starts reading the row...
    ticks.t += 0.01
    cache.forget(uid)  # ...a revocation lands meanwhile...
    cache.put(uid, None, read_at)  # ...and the possibly old row must not be served afterwards
    assert cache.get(uid) == (False, None)
    ticks.t += 0.01
    cache.put(uid, None, ticks())  # a read started after it is kept
    assert cache.get(uid) == (True, None)
