"""Personal API tokens for scripts: create (the secret shown once), list, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec

from api.paging import PageQuery
from api.revocation import announce
from api.routing import Call, Routes
from engine.domain.errors import Forbidden
from engine.store import api_tokens
from engine.store.api_tokens import ApiToken, Scope
from engine.store.rows import Page

routes = Routes()

NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$(?!\n)"


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NAME_PATTERN)]
    scope: Scope = "read"
    # Days until the token expires; absent or null = never (until revoked).
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class NewToken(ApiToken):
    token: str  # the secret: shown in this answer only


def _sessions_only(call: Call) -> None:
    # A leaked token must not mint longer-lived ones or outlive its own revocation.
    if call.me.token_id is not None:
        raise Forbidden("API tokens cannot manage API tokens; log in", field="Authorization")


@routes.route("POST", "/me/tokens", summary="Create a personal API token (the secret is shown once)",
              body=TokenCreate, response=NewToken, status=201, tag="auth")
async def create_token(call: Call) -> NewToken:
    _sessions_only(call)
    d, b = call.deps, call.body
    now = d.clock.now()
    expires_at = None if b.expires_in_days is None else now + timedelta(days=b.expires_in_days)
    info, secret = await api_tokens.create(d.pool, call.me.id, b.name, b.scope, expires_at, now)
    return NewToken(**msgspec.structs.asdict(info), token=secret)


@routes.route("GET", "/me/tokens", summary="List your API tokens (never their secrets)", query=PageQuery,
              response=Page[ApiToken], tag="auth")
async def list_tokens(call: Call) -> Page[ApiToken]:
    return await api_tokens.list_own(call.deps.pool, call.me.id, call.query.limit, call.query.offset)


@routes.route("DELETE", "/me/tokens/{id}", summary="Revoke one of your API tokens (at once, streams included)",
              response=ApiToken, tag="auth")
async def revoke_token(call: Call) -> ApiToken:
    _sessions_only(call)
    d = call.deps
    token = await api_tokens.revoke(d.pool, call.me.id, call.id(), d.clock.now())
    await announce(d, call.me.id)
    return token
