"""Login, the caller's own profile and their own password."""

from __future__ import annotations

from typing import Annotated

import msgspec

from api.login_throttle import LoginThrottle
from api.revocation import announce
from api.routing import Call, Routes
from engine.domain.errors import Forbidden, InvalidCredentials
from engine.store import accounts
from engine.store.rows import User

routes = Routes()

Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class LoginOut(msgspec.Struct):
    token: str
    token_type: str
    expires_in: int
    user: User


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    old_password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    new_password: Password


@routes.route("POST", "/auth/login", summary="Log in; returns a JWT", access="public", body=LoginIn,
              response=LoginOut, tag="auth")
async def login(call: Call) -> LoginOut:
    d, body = call.deps, call.body
    throttle = LoginThrottle(d.redis, d.pool, d.clock, d.settings.login_max_failures,
                             d.settings.login_window_seconds)
    address = call.request.remote or "unknown"
    await throttle.reserve(body.username, address)  # counted before the check: see login_rules
    row = await accounts.login_state(d.pool, body.username)
    valid = await d.passwords.verify_async(row["password_hash"] if row else None, body.password)
    if row is None or not valid or not row["enabled"]:
        raise InvalidCredentials("wrong username or password, or the account is disabled")
    await throttle.succeeded(body.username, address)
    now = d.clock.now()
    user = await accounts.record_login(d.pool, row["id"], now)
    token = d.tokens.issue(row["id"], row["role"], row["token_version"], now)
    return LoginOut(token, "Bearer", d.tokens.ttl_seconds, user)


@routes.route("GET", "/me", summary="The caller's profile and remaining quota", response=User, tag="auth")
async def me(call: Call) -> User:
    return await accounts.get_user(call.deps.pool, call.me.id)


@routes.route("POST", "/me/password", summary="Change your own password (other sessions' tokens die)",
              body=PasswordChange, response=LoginOut, tag="auth")
async def change_password(call: Call) -> LoginOut:
    d, body = call.deps, call.body
    if call.me.token_id is not None:
        raise Forbidden("an API token cannot change the password; log in", field="Authorization")
    row = await accounts.login_state(d.pool, call.me.username)
    if row is None or not await d.passwords.verify_async(row["password_hash"], body.old_password):
        raise InvalidCredentials("the old password is wrong", field="old_password")
    version = await accounts.set_password(d.pool, row["id"], await d.passwords.hash_async(body.new_password))
    await announce(d, row["id"])
    now = d.clock.now()
    token = d.tokens.issue(row["id"], row["role"], version, now)
    return LoginOut(token, "Bearer", d.tokens.ttl_seconds, await accounts.get_user(d.pool, row["id"]))
