"""Parsing and validating import files (JSON lines, CSV) into rows ready for COPY.

Every row is checked with the rules of `POST /contacts` (engine.store.contact_models); a bad row is
reported with its 1-based line number and left out. Among valid rows with the same email
(case-insensitively) the last one wins. Pure CPU work, no I/O: the caller runs it in a thread.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, assert_never

import msgspec

from engine.domain.errors import ValidationError
from engine.store.contact_models import (
    EMAIL_PATTERN,
    MAX_EMAIL,
    MAX_FIELDS,
    MAX_NAME,
    MAX_TAG,
    MAX_TAGS,
    MAX_VALUE,
    NAME_PATTERN,
    TAG_PATTERN,
    ContactIn,
    RowError,
    field_key_problem,
    unique_names,
)

Format = Literal["jsonl", "csv"]
MAX_ERRORS = 1000
ROW_INVALID = "VALIDATION_ERROR"
ROW_MALFORMED = "MALFORMED_ROW"
# A staged row: (line number, email, name or "" to keep, fields as JSON text, tag names).
Staged = tuple[int, str, str, str, list[str]]

HELP = {
    "email": "not a valid email address",
    "name": "control characters are not allowed",
    "tags": "a tag name is 1-64 characters, without , ; | or control characters or surrounding spaces",
}
_BOM = b"\xef\xbb\xbf"
_TAG_SPLIT = re.compile(r"[;|,]")
_email_ok = re.compile(EMAIL_PATTERN).search
_name_ok = re.compile(NAME_PATTERN).search
_tag_ok = re.compile(TAG_PATTERN).search
_AT = re.compile(r" - at `\$\.?([^`]*)`")
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_MEMBER = re.compile(r"\w*")
_decoder = msgspec.json.Decoder(ContactIn)
_fields_json = msgspec.json.Encoder()


@dataclass
class Parsed:
    """The outcome of parsing one file: the rows to write and why the others were refused."""

    extra_tags: list[str] = field(default_factory=list)
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    # One staged row per email: a later valid row replaces an earlier one.
    winners: dict[str, Staged] = field(default_factory=dict)
    # Custom field names already found valid: files repeat the same few on every row.
    good_keys: set[str] = field(default_factory=set)
    # Every tag name the winning rows carry, once each (case-insensitively); set by parse().
    tag_names: list[str] = field(default_factory=list)

    def reject(self, row: int, field_name: str | None, code: str, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row, field_name, code, message))

    def accept(self, row: int, email: str, name: str, fields: Mapping[str, object], tags: list[str]) -> None:
        self.valid += 1
        if self.extra_tags:
            tags = unique_names(tags + self.extra_tags)
        elif len(tags) > 1 and len({t.lower() for t in tags}) < len(tags):
            tags = unique_names(tags)
        # PostgreSQL's lower() may differ from Python's beyond ASCII (it follows the database
        # locale): only ASCII emails are folded here; the merge's DISTINCT ON settles the rest.
        key = email.lower() if email.isascii() else email
        self.winners[key] = (row, email, name, _fields_json.encode(fields).decode() if fields else "{}", tags)

    def bad_key(self, fields: Mapping[str, object]) -> str | None:
        for key in fields:
            if key not in self.good_keys:
                if field_key_problem(key) is not None:
                    return key
                self.good_keys.add(key)
        return None

    def invalid(self, row: int, exc: msgspec.ValidationError) -> None:
        """Reject a row for a msgspec rule, naming its top-level member."""
        text = str(exc)
        at = _AT.search(text)
        path = at.group(1) if at else ""
        named = _NAMED.search(text)
        member = _MEMBER.match(path).group(0) if path else (named.group(1) if named else "")  # type: ignore[union-attr]
        if not member:
            self.reject(row, None, ROW_MALFORMED, "a row must be a JSON object")
            return
        message = _AT.sub("", text)
        if "matching regex" in message:
            message = HELP.get(member, message)
        elif "missing required field" in message:
            message = "required"
        elif "unknown field" in message:
            message = "unknown member (a row has email, name, fields and tags)"
        self.reject(row, member, ROW_INVALID, f"{path or member}: {message}")


def parse_jsonl(raw: bytes, extra_tags: list[str] | None = None) -> Parsed:
    """One JSON object per line, shaped like the `POST /contacts` body."""
    out = Parsed(list(extra_tags or []))
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    # JSON strings can carry NUL only as an escape; without one in the file no value needs a look.
    may_hold_nul = b"\\u0000" in raw
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line or line.isspace():
            continue
        out.rows += 1
        try:
            c = _decoder.decode(line)
        except msgspec.ValidationError as exc:
            out.invalid(number, exc)
            continue
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            out.reject(number, None, ROW_MALFORMED, f"not valid JSON: {exc}")
            continue
        if c.fields:
            key = out.bad_key(c.fields)
            if key is not None:
                out.reject(number, f"fields.{key}", ROW_INVALID, f"fields.{key}: {field_key_problem(key)}")
                continue
            if may_hold_nul and (key := _nul_value(c.fields)) is not None:
                out.reject(number, f"fields.{key}", ROW_INVALID, f"fields.{key}: NUL characters are not allowed")
                continue
        out.accept(number, c.email, "" if c.name is msgspec.UNSET else c.name, c.fields, c.tags)
    return out


def _nul_value(fields: Mapping[str, object]) -> str | None:
    return next((k for k, v in fields.items() if isinstance(v, str) and "\x00" in v), None)


@dataclass
class _Header:
    email: int
    name: int | None
    tags: int | None
    fields: list[tuple[int, str]]
    width: int


def _header(cells: list[str]) -> _Header:
    """Map CSV columns: email, name, tags (any case) and custom fields; blank headers are skipped."""
    seen: set[str] = set()
    known: dict[str, int] = {}
    custom: list[tuple[int, str]] = []
    for i, raw in enumerate(cells):
        title = raw.strip()
        if not title:
            continue
        low = title.lower()
        if low in seen:
            raise ValidationError(f"header: column {title!r} appears twice", field="header")
        seen.add(low)
        if low in ("email", "name", "tags"):
            known[low] = i
            continue
        problem = field_key_problem(title)
        if problem is not None:
            raise ValidationError(f"header: column {title!r}: {problem}", field="header")
        custom.append((i, title))
    if "email" not in known:
        raise ValidationError("header: the CSV needs an `email` column", field="header")
    if len(custom) > MAX_FIELDS:
        raise ValidationError(f"header: at most {MAX_FIELDS} custom field columns", field="header")
    return _Header(known["email"], known.get("name"), known.get("tags"), custom, len(cells))


def parse_csv(raw: bytes, extra_tags: list[str] | None = None) -> Parsed:
    """A header row, then one contact per record; blank cells leave stored values alone."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"body: the file is not UTF-8 (byte {exc.start})", field="body") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    out = Parsed(list(extra_tags or []))
    may_hold_nul = "\x00" in text
    try:
        first = next(reader, None)
        if first is None:
            raise ValidationError("header: the CSV has no header row", field="header")
        h = _header(first)
        start = reader.line_num + 1
        for cells in reader:
            # A quoted cell may span lines: a record's number is the line it starts on.
            number, start = start, reader.line_num + 1
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            out.rows += 1
            if len(cells) > h.width and any(c.strip() for c in cells[h.width:]):
                out.reject(number, None, ROW_MALFORMED, f"the row has {len(cells)} cells, the header {h.width}")
                continue
            _csv_row(out, number, cells, h, may_hold_nul)
    except csv.Error as exc:
        raise ValidationError(f"body: malformed CSV at line {reader.line_num}: {exc}", field="body") from None
    return out


def _csv_row(out: Parsed, number: int, cells: list[str], h: _Header, may_hold_nul: bool) -> None:
    """Check one record with the ContactIn rules, directly: msgspec.convert per row costs double."""
    n = len(cells)
    email = cells[h.email].strip() if h.email < n else ""
    if not email:
        return out.reject(number, "email", ROW_INVALID, "email: required")
    if len(email) > MAX_EMAIL or not _email_ok(email):
        return out.reject(number, "email", ROW_INVALID, f"email: {HELP['email']}")
    name = cells[h.name].strip() if h.name is not None and h.name < n else ""
    if len(name) > MAX_NAME:
        return out.reject(number, "name", ROW_INVALID, f"name: at most {MAX_NAME} characters")
    if name and not _name_ok(name):
        return out.reject(number, "name", ROW_INVALID, f"name: {HELP['name']}")
    tags: list[str] = []
    if h.tags is not None and h.tags < n and (cell := cells[h.tags]):
        tags = [t for t in (p.strip() for p in _TAG_SPLIT.split(cell)) if t]
        if len(tags) > MAX_TAGS:
            return out.reject(number, "tags", ROW_INVALID, f"tags: at most {MAX_TAGS} tags")
        if any(len(t) > MAX_TAG or not _tag_ok(t) for t in tags):
            return out.reject(number, "tags", ROW_INVALID, f"tags: {HELP['tags']}")
    fields = {key: value for i, key in h.fields if i < n and (value := cells[i].strip())}
    for key, value in fields.items():
        if len(value) > MAX_VALUE:
            return out.reject(number, f"fields.{key}", ROW_INVALID, f"{key}: at most {MAX_VALUE} characters")
        if may_hold_nul and "\x00" in value:
            return out.reject(number, f"fields.{key}", ROW_INVALID, f"{key}: NUL characters are not allowed")
    out.accept(number, email, name, fields, tags)


def parse(raw: bytes, fmt: Format, extra_tags: list[str] | None = None) -> Parsed:
    """Parse a file of either format and collect the tag names its valid rows use."""
    match fmt:
        case "jsonl":
            out = parse_jsonl(raw, extra_tags)
        case "csv":
            out = parse_csv(raw, extra_tags)
        case _:
            assert_never(fmt)
    out.tag_names = unique_names([t for row in out.winners.values() for t in row[4]])
    return out
