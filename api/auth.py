"""Bearer-token authentication: every call re-checks the user's enabled flag and token version."""

from __future__ import annotations

import uuid

from aiohttp import web

from api.deps import Deps
from api.routing_types import CurrentUser
from engine.domain.errors import Unauthorized
from engine.store import api_tokens
from engine.store.accounts import AuthState, auth_state


async def authenticate(request: web.Request, d: Deps, *, fresh: bool = False) -> CurrentUser:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token", field="Authorization")
    return await authenticate_token(token.strip(), d, fresh=fresh)


async def authenticate_token(token: str, d: Deps, field: str = "Authorization", *,
                             fresh: bool = False) -> CurrentUser:
    """Check a bare token (also for clients that pass it in the query string, like EventSource);
    `fresh` reads the user's row even when a recent read is cached (api.auth_cache)."""
    if api_tokens.is_api_token(token):
        return await _personal_token(token, d, field)
    claims = d.tokens.verify(token, d.clock.now())
    state = await _state(d, claims.sub, fresh)
    if state is None or not state.enabled or state.token_version != claims.ver:
        raise Unauthorized("token is no longer valid", field=field)
    return CurrentUser(state.id, state.username, state.role)


async def _state(d: Deps, user_id: uuid.UUID, fresh: bool) -> AuthState | None:
    cache = d.auth_states
    if cache is None:
        return await auth_state(d.pool, user_id)
    if not fresh:
        found, state = cache.get(user_id)
        if found:
            return state
    read_at = cache.monotonic()
    state = await auth_state(d.pool, user_id)
    cache.put(user_id, state, read_at)
    return state


async def _personal_token(secret: str, d: Deps, field: str) -> CurrentUser:
    """A personal API token: not revoked, not expired (by the injected clock), owner enabled."""
    t = await api_tokens.auth_state(d.pool, secret)
    if t is None or t.revoked_at is not None or not t.enabled:
        raise Unauthorized("token is no longer valid", field=field)
    if t.expires_at is not None and t.expires_at <= d.clock.now():
        raise Unauthorized("token expired", field=field)
    return CurrentUser(t.user_id, t.username, t.role, t.scope, t.token_id)
