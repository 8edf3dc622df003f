"""Decoding of request bodies, query strings and path ids into typed values, with 4xx errors."""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

import msgspec

from engine.domain.errors import ValidationError

T = TypeVar("T")

# msgspec ends a message with where it happened: "- at `$.a[0].b`", or for a bad object key
# "- at `key` in `$.a`". Paths hold only our field names, indexes and `[...]` (any dict value):
# never the caller's text, so a path cannot be forged by a key.
_PATH = re.compile(r"(?: - )?at (`key` in )?`\$([^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def field_of(exc: msgspec.ValidationError | msgspec.DecodeError) -> str | None:
    """The dotted field a msgspec error points at (`templates[0]`, `items[2].name`, `fields[...]`).

    A bad object key names the object (`fields`): msgspec does not repeat the caller's key.
    """
    text = str(exc)
    at = _PATH.search(text)
    path = at.group(2).lstrip(".") if at else ""
    if at is not None and at.group(1):
        return path or None
    for pattern in (_UNKNOWN, _MISSING):
        m = pattern.search(text)
        if m:
            return f"{path}.{m.group(1)}" if path else m.group(1)
    return path or None


def _clean(text: str) -> str:
    """The message without its location, which the caller names as the field."""
    at = _PATH.search(text)
    if at is None:
        return text
    return text[:at.start()].rstrip(" -") + (" (an object key)" if at.group(1) else "")


def decode_body(raw: bytes, kind: type[T]) -> T:
    if not raw.strip():
        raise ValidationError("request body is required", field="body")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        f = field_of(exc)
        raise ValidationError(f"{f or 'body'}: {_clean(str(exc))}", field=f or "body") from exc
    except msgspec.DecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc}", field="body") from exc


def convert_query(params: dict[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(params, kind, strict=False)
    except msgspec.ValidationError as exc:
        f = field_of(exc)
        raise ValidationError(f"{f or 'query'}: {_clean(str(exc))}", field=f or "query") from exc


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError) as exc:
        raise ValidationError(f"{field} is not a valid UUID", field=field) from exc
