"""User administration and the quota ledger (admin)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from api.paging import PageQuery
from api.revocation import announce
from api.routing import Call, Routes
from engine.domain.errors import InvalidState, NotFound
from engine.store import accounts, archive, quota_ledger
from engine.store.archive import Archived
from engine.store.accounts import create_user
from engine.store.contact_models import EMAIL_PATTERN, MAX_EMAIL
from engine.store.rows import Page, QuotaEntry, User

routes = Routes()

Username = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{3,64}$(?!\n)")]
# The contacts' rule: no whitespace or control characters (PostgreSQL text cannot hold NUL).
Email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=MAX_EMAIL)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    email: Email
    password: Password
    role: Literal["admin", "user"] = "user"
    enabled: bool = True
    quota: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] = 0


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email | None = None
    role: Literal["admin", "user"] | None = None
    enabled: bool | None = None
    password: Password | None = None


class QuotaAdjust(msgspec.Struct, forbid_unknown_fields=True):
    delta: Annotated[int, msgspec.Meta(ge=-1_000_000_000, le=1_000_000_000)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


@routes.route("POST", "/users", summary="Create a user", access="admin", body=UserCreate, response=User,
              status=201, tag="users")
async def post_user(call: Call) -> User:
    d, b = call.deps, call.body
    return await create_user(d.pool, d.passwords, b.username, b.email, b.password, role=b.role, quota=b.quota,
                             enabled=b.enabled, operator_id=call.me.id)


@routes.route("GET", "/users", summary="List users", access="admin", query=PageQuery, response=Page[User],
              tag="users")
async def list_users(call: Call) -> Page[User]:
    return await accounts.list_users(call.deps.pool, call.query.limit, call.query.offset)


@routes.route("GET", "/users/{id}", summary="Get a user", access="admin", response=User, tag="users")
async def get_user(call: Call) -> User:
    return await accounts.get_user(call.deps.pool, call.id())


@routes.route("PATCH", "/users/{id}", summary="Update a user (email, role, enabled, password reset)",
              access="admin", body=UserUpdate, response=User, tag="users")
async def update_user(call: Call) -> User:
    d, body, user_id = call.deps, call.body, call.id()
    if body.enabled is False and user_id == call.me.id:
        # Disabling ends every token at once: the caller would lock themselves out, perhaps as
        # the last administrator, with nobody left to enable the account again.
        raise InvalidState("administrators cannot disable their own account", field="enabled")
    password_hash = await d.passwords.hash_async(body.password) if body.password is not None else None
    user = await accounts.update_user(d.pool, user_id, email=body.email, role=body.role, enabled=body.enabled,
                                      password_hash=password_hash)
    if body.enabled is False or body.password is not None or body.role is not None:
        await announce(d, user_id)  # open event streams re-check the user at once
    return user


@routes.route("DELETE", "/users/{id}", summary="Delete (archive) a user; 409 USER_HAS_CAMPAIGNS while any is unfinished",
              access="admin", response=Archived, tag="users")
async def delete_user(call: Call) -> Archived:
    d, user_id = call.deps, call.id()
    archived = await archive.archive_user(d.pool, user_id, call.me.id, d.clock.now())
    await announce(d, user_id)  # their open event streams close
    return archived


@routes.route("POST", "/users/{id}/quota", summary="Adjust a user's quota with a reason", access="admin",
              body=QuotaAdjust, response=QuotaEntry, status=201, tag="users")
async def adjust_quota(call: Call) -> QuotaEntry:
    user_id, body = call.id(), call.body
    async with call.deps.pool.acquire() as conn, conn.transaction():
        try:
            entry = await quota_ledger.apply(conn, user_id, body.delta, "adjust", operator_id=call.me.id,
                                             reason=body.reason)
        except LookupError:
            raise NotFound("user not found", field="id") from None
    if call.deps.engine is not None:
        await call.deps.engine.quota_changed(user_id)
    return entry


@routes.route("GET", "/users/{id}/quota-log", summary="A user's quota ledger, newest first", access="admin",
              query=PageQuery, response=Page[QuotaEntry], tag="users")
async def quota_log(call: Call) -> Page[QuotaEntry]:
    user_id, q = call.id(), call.query
    await accounts.get_user(call.deps.pool, user_id)
    return await quota_ledger.history(call.deps.pool, user_id, q.limit, q.offset)


@routes.route("GET", "/me/quota-log", summary="The caller's own quota ledger, newest first", query=PageQuery,
              response=Page[QuotaEntry], tag="auth")
async def my_quota_log(call: Call) -> Page[QuotaEntry]:
    q = call.query
    return await quota_ledger.history(call.deps.pool, call.me.id, q.limit, q.offset)
