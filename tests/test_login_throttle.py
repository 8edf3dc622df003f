"""Login throttling cannot be turned against users (engine.domain.login_rules)."""

from __future__ import annotations

import asyncio

import pytest

from api.login_throttle import LoginThrottle, unlock
from engine.domain.errors import TooManyAttempts
from engine.infra.passwords import Passwords
from tests.conftest import Api

WRONG = {"username": "bob", "password": "wrong-wrong"}


def _throttle(deps) -> LoginThrottle:
    return LoginThrottle(deps.redis, deps.pool, deps.clock, 10, 300)


async def _refused(t: LoginThrottle, user: str, address: str) -> int:
    with pytest.raises(TooManyAttempts) as info:
        await t.reserve(user, address)
    return int(info.value.details["retry_after"])


async def test_one_address_is_limited_without_locking_the_account_elsewhere(deps, clock) -> None:
    t = _throttle(deps)
    for _ in range(10):
        await t.reserve("admin", "203.0.113.9")
    assert await _refused(t, "admin", "203.0.113.9") > 60  # this address waits for its window
    # The account as a whole is only delayed: the owner elsewhere gets in after a short wait.
    wait = await _refused(t, "admin", "198.51.100.7")
    assert wait <= 1
    clock.advance(wait)
    await t.reserve("admin", "198.51.100.7")
    await t.succeeded("admin", "198.51.100.7")
    await t.reserve("admin", "198.51.100.7")
    assert await _refused(t, "admin", "203.0.113.9") > 60


async def test_the_account_delay_grows_exponentially_and_is_capped(deps, clock) -> None:
    t = _throttle(deps)
    for i in range(10):
        await t.reserve("carol", f"10.0.0.{i}")  # a distributed guesser, one try per address
    waits = []
    for i in range(10, 20):
        wait = await _refused(t, "carol", f"10.0.1.{i}")
        waits.append(wait)
        clock.advance(wait)
        await t.reserve("carol", f"10.0.1.{i}")
    assert waits[:6] == [1, 2, 4, 8, 16, 32] and set(waits[6:]) == {60}


async def test_a_shared_proxy_address_does_not_lock_out_everyone_behind_it(admin: Api, anon: Api) -> None:
    await admin.new_user("bob")
    await admin.new_user("carol")
    for _ in range(10):
        await anon.err("POST", "/auth/login", 401, "INVALID_CREDENTIALS", json=WRONG)
    await anon.err("POST", "/auth/login", 429, "TOO_MANY_ATTEMPTS", field="username",
                   json={"username": "bob", "password": "password-123"})
    await anon.login("carol", "password-123")  # same address, other account


async def test_parallel_guesses_check_no_more_passwords_than_the_limit(admin: Api, anon: Api, deps) -> None:
    await admin.new_user("bob")
    checks = 0

    class Counting(Passwords):
        def verify(self, stored_hash: str | None, password: str) -> bool:
            nonlocal checks
            checks += 1
            return super().verify(stored_hash, password)

    deps.passwords = Counting(time_cost=1, memory_cost=1024)
    answers = await asyncio.gather(*(anon.call("POST", "/auth/login", json=WRONG) for _ in range(40)))
    assert checks == 10
    assert sorted(status for status, _ in answers) == [401] * 10 + [429] * 30


async def test_admin_unlock_clears_every_counter_of_the_account(admin: Api, anon: Api, deps) -> None:
    await admin.new_user("bob")
    for _ in range(10):
        await anon.call("POST", "/auth/login", json=WRONG)
    await anon.err("POST", "/auth/login", 429, "TOO_MANY_ATTEMPTS", json={"username": "bob", "password": "password-123"})
    assert await unlock(deps.redis, deps.pool, "BOB") >= 2
    await anon.login("bob", "password-123")


def test_attempts_below_the_limit_never_delay_each_other() -> None:
    """Two logins of one account at once: the one whose clock was read a moment earlier but that
    is decided second is not refused (below the limit there is no delay to wait for)."""
    from datetime import datetime, timedelta, timezone

    from engine.domain.login_rules import Counter, ThrottleRule, decide

    rule = ThrottleRule(10, timedelta(minutes=5))
    t = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
    first = decide(rule, Counter(), Counter(), t)
    second = decide(rule, Counter(), first.account, t - timedelta(milliseconds=3))
    assert first.allowed and second.allowed
