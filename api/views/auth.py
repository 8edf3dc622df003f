"""Login and the caller's own profile."""

from __future__ import annotations

from typing import Annotated

import msgspec

from api.login_throttle import LoginThrottle
from api.routing import Call, Routes
from engine.domain.errors import InvalidCredentials
from engine.store import accounts
from engine.store.rows import User

routes = Routes()


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class LoginOut(msgspec.Struct):
    token: str
    token_type: str
    expires_in: int
    user: User


@routes.route("POST", "/auth/login", summary="Log in; returns a JWT", access="public", body=LoginIn,
              response=LoginOut, tag="auth")
async def login(call: Call) -> LoginOut:
    d, body = call.deps, call.body
    throttle = LoginThrottle(d.redis, d.settings.login_max_failures, d.settings.login_window_seconds)
    address = call.request.remote or "unknown"
    await throttle.check(body.username, address)
    row = await accounts.login_state(d.pool, body.username)
    valid = d.passwords.verify(row["password_hash"] if row else None, body.password)
    if row is None or not valid or not row["enabled"]:
        await throttle.failed(body.username, address)
        raise InvalidCredentials("wrong username or password, or the account is disabled")
    await throttle.succeeded(body.username)
    now = d.clock.now()
    user = await accounts.record_login(d.pool, row["id"], now)
    token = d.tokens.issue(row["id"], row["role"], row["token_version"], now)
    return LoginOut(token, "Bearer", d.tokens.ttl_seconds, user)


@routes.route("GET", "/me", summary="The caller's profile and remaining quota", response=User, tag="auth")
async def me(call: Call) -> User:
    return await accounts.get_user(call.deps.pool, call.me.id)
