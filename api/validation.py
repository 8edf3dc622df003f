"""Decoding of request bodies, query strings and path ids into typed values, with 4xx errors."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
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


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _DuplicateKey("duplicate key")
    return found


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _nul_at(value: Any, path: str) -> str | None:
    """The dotted path of the first string (or object key) holding a NUL character."""
    match value:
        case str():
            return path if "\x00" in value else None
        case dict():
            for key, item in value.items():
                # A caller's own key (custom fields) is named `[...]`, as msgspec does.
                step = f"{path}.{key}" if _NAME.match(key) else f"{path}[...]"
                if "\x00" in key:
                    return step
                found = _nul_at(item, step)
                if found:
                    return found
        case list():
            for i, item in enumerate(value):
                found = _nul_at(item, f"{path}[{i}]")
                if found:
                    return found
    return None


def _number(text: str) -> int | float:
    """JSON Schema counts 5.0 as an integer, so the decoder does too."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2 ** 63 else value


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def load_json(raw: bytes) -> Any:
    """Parse a body with what msgspec alone lets through refused: duplicate object keys, and
    NUL characters (PostgreSQL text cannot hold them) in any string or key."""
    try:
        doc = json.loads(raw, object_pairs_hook=_no_duplicates, parse_float=_number, parse_constant=_not_json)
    except _DuplicateKey:
        raise ValidationError("a JSON object repeats a key", field="body") from None
    except (ValueError, RecursionError):
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ValidationError(f"malformed JSON: {exc}", field="body") from exc
        raise ValidationError("malformed JSON", field="body") from None
    nul = _nul_at(doc, "")
    if nul is not None:
        field = nul.lstrip(".") or "body"
        raise ValidationError(f"{field}: NUL characters are not allowed", field=field)
    return doc


def decode_body(raw: bytes, kind: type[T]) -> T:
    if not raw.strip():
        raise ValidationError("request body is required", field="body")
    doc = load_json(raw)
    try:
        return msgspec.convert(doc, kind)
    except msgspec.ValidationError as exc:
        f = field_of(exc)
        raise ValidationError(f"{f or 'body'}: {_clean(str(exc))}", field=f or "body") from exc


def convert_query(params: dict[str, Any], kind: type[T]) -> T:
    for name, value in params.items():
        if "\x00" in name or "\x00" in value:
            field = name if _NAME.match(name) else "query"
            raise ValidationError(f"{field}: NUL characters are not allowed", field=field)
    try:
        return msgspec.convert(params, kind, strict=False)
    except msgspec.ValidationError as exc:
        f = field_of(exc)
        raise ValidationError(f"{f or 'query'}: {_clean(str(exc))}", field=f or "query") from exc


def in_utc_range(value: datetime | None, field: str) -> datetime | None:
    """The time in UTC; a time that leaves years 1-9999 once converted is a validation error."""
    if value is None:
        return None
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValidationError(f"{field} is outside years 1-9999 in UTC", field=field) from None


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError) as exc:
        raise ValidationError(f"{field} is not a valid UUID", field=field) from exc
