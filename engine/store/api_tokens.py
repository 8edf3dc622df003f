"""Personal API tokens: created (the secret shown once), listed, revoked, and checked by hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Literal, NamedTuple

import asyncpg
import msgspec

from engine.domain.errors import NotFound
from engine.infra.queries import Q
from engine.store.rows import Page, page_of, row_struct

PREFIX = "edm_pat_"
Scope = Literal["read", "write"]


class ApiToken(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    scope: str
    hint: str  # the secret's first characters, to tell tokens apart; never enough to use one
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None


class TokenAuth(NamedTuple):
    token_id: uuid.UUID
    scope: str
    expires_at: datetime | None
    revoked_at: datetime | None
    user_id: uuid.UUID
    username: str
    role: str
    enabled: bool


def is_api_token(text: str) -> bool:
    return text.startswith(PREFIX)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create(pool: asyncpg.Pool, user_id: uuid.UUID, name: str, scope: Scope, expires_at: datetime | None,
                 now: datetime) -> tuple[ApiToken, str]:
    """A new token and its secret (returned this once; only its hash is stored)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    row = await pool.fetchrow(Q["api_tokens.insert"], user_id, name, scope, _digest(secret),
                              secret[:len(PREFIX) + 4], expires_at, now)
    return row_struct(ApiToken, row), secret


async def list_own(pool: asyncpg.Pool, user_id: uuid.UUID, limit: int, offset: int) -> Page[ApiToken]:
    return page_of(ApiToken, await pool.fetch(Q["api_tokens.list"], user_id, limit, offset), limit, offset)


async def revoke(pool: asyncpg.Pool, user_id: uuid.UUID, token_id: uuid.UUID, now: datetime) -> ApiToken:
    row = await pool.fetchrow(Q["api_tokens.revoke"], token_id, user_id, now)
    if row is None:
        raise NotFound("token not found", field="id")
    return row_struct(ApiToken, row)


async def auth_state(pool: asyncpg.Pool, secret: str) -> TokenAuth | None:
    row = await pool.fetchrow(Q["api_tokens.auth_state"], _digest(secret))
    return None if row is None else TokenAuth(row["token_id"], row["scope"], row["expires_at"], row["revoked_at"],
                                              row["id"], row["username"], row["role"], row["enabled"])
