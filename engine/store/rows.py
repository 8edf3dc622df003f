"""Rows as typed structs: what stores return and the API serialises."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# Field names per struct type: reflection once per type, not once per row (per-row
# `msgspec.structs.fields` was a quarter of the API's CPU).
_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in msgspec.structs.fields(kind))
    return names


def row_struct(kind: type[T], row: Any) -> T:
    """Build a struct from a record, ignoring extra columns such as window totals."""
    return kind(**{name: row[name] for name in _field_names(kind)})


def page_of(kind: type[T], rows: list[Any], limit: int, offset: int) -> Page[T]:
    total = int(rows[0]["total"]) if rows else 0
    return Page([row_struct(kind, r) for r in rows], total, limit, offset)


class User(msgspec.Struct):
    id: uuid.UUID
    username: str
    email: str
    role: str
    enabled: bool
    quota_remaining: int
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class QuotaEntry(msgspec.Struct):
    id: int
    user_id: uuid.UUID
    delta: int
    balance_after: int
    kind: str
    campaign_id: uuid.UUID | None
    operator_id: uuid.UUID | None
    reason: str
    created_at: datetime
