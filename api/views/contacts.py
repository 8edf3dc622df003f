"""A user's own contacts, one at a time and in bulk (JSON lines or CSV import)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from api.paging import PageQuery
from api.routing import Call, Routes
from engine.domain.errors import ValidationError
from engine.store import contacts
from engine.store.contact_import import format_of, import_contacts, parse_tag_list
from engine.store.contact_models import (
    Contact,
    ContactIn,
    ContactPatch,
    Deleted,
    ImportResult,
    TagName,
)
from engine.store.rows import Page

routes = Routes()


class ContactQuery(PageQuery, forbid_unknown_fields=True):
    tag: TagName | None = None  # only contacts carrying this tag (case-insensitive)
    q: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None  # email or name contains


# `?tags=a, b,c`: up to 100 comma-separated tag names (parse_tag_list's rule, stated for the
# document and checked by the decoder as well, so both say the same).
_TAG = r"[^\s,;|\x00-\x1f](?:[^,;|\x00-\x1f]{0,62}[^\s,;|\x00-\x1f])?"
_SEGMENT = rf"[^\S\x00-\x1f]*(?:{_TAG})?[^\S\x00-\x1f]*"
TAG_LIST_PATTERN = rf"^{_SEGMENT}(?:,{_SEGMENT}){{0,99}}$(?!\n)"


class ImportQuery(msgspec.Struct, forbid_unknown_fields=True):
    # Comma-separated tag names, added to every row.
    tags: Annotated[str, msgspec.Meta(max_length=2000, pattern=TAG_LIST_PATTERN)] | None = None


# Declared before /contacts/{id} so the literal path is matched first.
@routes.route("POST", "/contacts/import",
              summary="Import contacts in bulk (JSON lines or CSV); upsert by email, report rejected rows",
              query=ImportQuery, response=ImportResult, raw_body="application/x-ndjson,application/jsonl,text/csv",
              tag="contacts")
async def import_contacts_view(call: Call) -> ImportResult:
    fmt = format_of(call.request.headers.get("Content-Type", ""))
    extra = parse_tag_list(call.query.tags)
    raw = await call.request.read()
    if not raw or raw.isspace():  # no copy of a 64 MiB body just to look at it
        raise ValidationError("request body is required", field="body")
    return await import_contacts(call.deps.pool, call.me.id, raw, fmt, extra)


@routes.route("POST", "/contacts", summary="Create a contact; named tags the caller lacks are created",
              body=ContactIn, response=Contact, status=201, tag="contacts")
async def create_contact(call: Call) -> Contact:
    return await contacts.create_contact(call.deps.pool, call.me.id, call.body)


@routes.route("GET", "/contacts", summary="List contacts by email, optionally by tag or search text",
              query=ContactQuery, response=Page[Contact], tag="contacts")
async def list_contacts(call: Call) -> Page[Contact]:
    q = call.query
    return await contacts.list_contacts(call.deps.pool, call.me.id, limit=q.limit, offset=q.offset, tag=q.tag, q=q.q)


@routes.route("GET", "/contacts/{id}", summary="Get a contact", response=Contact, tag="contacts")
async def get_contact(call: Call) -> Contact:
    return await contacts.get_contact(call.deps.pool, call.me.id, call.id())


@routes.route("PATCH", "/contacts/{id}",
              summary="Update a contact; `fields` and `tags`, when given, replace the stored ones",
              body=ContactPatch, response=Contact, tag="contacts")
async def update_contact(call: Call) -> Contact:
    return await contacts.update_contact(call.deps.pool, call.me.id, call.id(), call.body)


@routes.route("DELETE", "/contacts/{id}", summary="Delete a contact", response=Deleted, tag="contacts")
async def delete_contact(call: Call) -> Deleted:
    contact_id = call.id()
    await contacts.delete_contact(call.deps.pool, call.me.id, contact_id)
    return Deleted(contact_id)
