"""Contacts and tags: the rules their input must keep, and the rows the API returns.

The same `ContactIn` struct validates `POST /contacts` bodies and every JSON-lines row, and
the CSV import checks its cells against the same patterns and limits, so an import accepts
exactly what the single-contact route accepts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

import msgspec

from engine.domain.errors import ValidationError

MAX_FIELDS = 100
MAX_TAGS = 100
MAX_EMAIL = 254
MAX_NAME = 200
MAX_TAG = 64
MAX_VALUE = 2000

# PostgreSQL text cannot hold NUL, so the rules keep it (and, where it makes sense, every
# control character) out: bad input is a 400, never a failed write. `$(?!\n)` is the true end
# of the string: Python's bare `$` also matches before a trailing newline. The patterns are
# shared by the msgspec types below and the CSV import's direct checks.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$(?!\n)"
NAME_PATTERN = r"^[^\x00-\x1f]*$(?!\n)"
# Tag names separate with `,` `;` `|` in imports and filters, so those can never be part of one.
TAG_PATTERN = r"^[^\s,;|\x00-\x1f](?:[^,;|\x00-\x1f]*[^\s,;|\x00-\x1f])?$(?!\n)"

Email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=MAX_EMAIL)]
ContactName = Annotated[str, msgspec.Meta(max_length=MAX_NAME, pattern=NAME_PATTERN)]
TagName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TAG, pattern=TAG_PATTERN)]
# String values are checked for NUL by check_fields (a regex on every value costs imports).
# Integers stay within 64 bits so every JSON encoder on the way to jsonb takes them.
FieldValue = (Annotated[str, msgspec.Meta(max_length=MAX_VALUE)]
              | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | float | bool | None)
# The document's statement of field_key_problem (which gives the friendlier message): a letter or
# `_` then word characters, and not one of the built-in attributes in any case.
FIELD_KEY_PATTERN = r"^(?![Ee][Mm][Aa][Ii][Ll]$|[Nn][Aa][Mm][Ee]$|[Tt][Aa][Gg][Ss]$)[^\W\d]\w{0,63}$(?!\n)"
Fields = Annotated[dict[str, FieldValue], msgspec.Meta(
    max_length=MAX_FIELDS, extra_json_schema={"propertyNames": {"pattern": FIELD_KEY_PATTERN}})]
TagNames = Annotated[list[TagName], msgspec.Meta(max_length=MAX_TAGS)]

# Custom field names are template variables (`{{company}}`): a letter or `_`, then word characters.
FIELD_KEY = re.compile(r"[^\W\d]\w{0,63}")
# These are the contact's own template variables; a custom field must not shadow them.
RESERVED_KEYS = frozenset({"email", "name", "tags"})


class ContactIn(msgspec.Struct, forbid_unknown_fields=True):
    """One contact as a client sends it (create body and one imported row)."""

    email: Email
    # Unset means "keep" on import; a new contact without a name gets "".
    name: ContactName | msgspec.UnsetType = msgspec.UNSET
    fields: Fields = {}
    tags: TagNames = []


class ContactPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update; an absent (or null) member keeps the stored value."""

    email: Email | None = None
    name: ContactName | None = None
    # Replaces the stored fields object as a whole (imports merge instead).
    fields: Fields | None = None
    # Replaces the contact's tag set; missing tags are created.
    tags: TagNames | None = None


class TagIn(msgspec.Struct, forbid_unknown_fields=True):
    name: TagName


class Contact(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    fields: dict[str, FieldValue]
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class Tag(msgspec.Struct):
    id: uuid.UUID
    name: str
    contact_count: int
    created_at: datetime


class Deleted(msgspec.Struct):
    id: uuid.UUID
    deleted: bool = True


class RowError(msgspec.Struct):
    """Why one imported row was rejected; `row` is its 1-based line number in the file."""

    row: int
    field: str | None
    code: str
    message: str


class ImportResult(msgspec.Struct):
    rows: int  # data rows seen (blank lines not counted)
    imported: int  # new contacts
    updated: int  # existing contacts merged into
    unchanged: int  # of those, contacts whose name and fields already matched (tags may be added)
    rejected: int  # rows that failed validation; nothing of them was written
    duplicates: int  # valid rows superseded by a later row with the same email
    errors: list[RowError]
    errors_truncated: bool


def field_key_problem(key: str) -> str | None:
    """Why `key` cannot name a custom field, or None when it can."""
    if not FIELD_KEY.fullmatch(key):
        return "a custom field name is 1-64 letters, digits or _ and starts with a letter or _"
    if key.lower() in RESERVED_KEYS:
        return f"{key!r} is a built-in contact attribute, not a custom field"
    return None


def fields_problem(fields: Mapping[str, object]) -> tuple[str, str] | None:
    """(field path, reason) for the first custom field that breaks the rules, or None."""
    for key, value in fields.items():
        problem = field_key_problem(key)
        if problem is not None:
            return f"fields.{key}", problem
        if isinstance(value, str) and "\x00" in value:
            return f"fields.{key}", "NUL characters are not allowed"
    return None


def check_fields(fields: Mapping[str, object]) -> None:
    """Raise ValidationError naming the first custom field that breaks the rules."""
    found = fields_problem(fields)
    if found is not None:
        raise ValidationError(f"{found[0]}: {found[1]}", field=found[0])


def unique_names(names: list[str]) -> list[str]:
    """Tag names without case-insensitive repeats, first spelling kept."""
    seen: dict[str, str] = {}
    for n in names:
        seen.setdefault(n.lower(), n)
    return list(seen.values())
