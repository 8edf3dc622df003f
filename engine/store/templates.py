"""Email templates owned by a user: validation at save time, storage, preview."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

import asyncpg
import msgspec

from engine.domain.errors import Conflict, NotFound, TemplateInUse, ValidationError
from engine.infra.queries import Q
from engine.store.rows import Page, page_of, row_struct
from engine.templating.rendering import Rendered, compile_template, contact_vars, render


class Template(msgspec.Struct):
    id: uuid.UUID
    name: str
    subject: str
    html_body: str
    text_body: str
    created_at: datetime
    updated_at: datetime


class TemplateSummary(msgspec.Struct):
    id: uuid.UUID
    name: str
    subject: str
    created_at: datetime
    updated_at: datetime


def check(name: str, subject: str, html_body: str, text_body: str) -> None:
    """Raise VALIDATION_ERROR for bad fields, then TEMPLATE_ERROR if a part does not compile."""
    if not name.strip():
        raise ValidationError("name must not be blank", field="name")
    if not subject.strip():
        raise ValidationError("subject must not be blank", field="subject")
    if "\r" in subject or "\n" in subject:
        raise ValidationError("subject must be a single line", field="subject")
    if not html_body.strip() and not text_body.strip():
        raise ValidationError("html_body or text_body must be non-empty", field="html_body")
    compile_template(subject, html_body, text_body)


async def create(pool: asyncpg.Pool, user_id: uuid.UUID, name: str, subject: str, html_body: str,
                 text_body: str) -> Template:
    check(name, subject, html_body, text_body)
    row = await pool.fetchrow(Q["templates.insert"], user_id, name, subject, html_body, text_body)
    return row_struct(Template, row)


async def list_own(pool: asyncpg.Pool, user_id: uuid.UUID, limit: int, offset: int) -> Page[TemplateSummary]:
    return page_of(TemplateSummary, await pool.fetch(Q["templates.list"], user_id, limit, offset), limit, offset)


async def get_own(pool: asyncpg.Pool, user_id: uuid.UUID, template_id: uuid.UUID) -> Template:
    row = await pool.fetchrow(Q["templates.get_own"], template_id, user_id)
    if row is None:
        raise NotFound("template not found", field="id")
    return row_struct(Template, row)


async def update(pool: asyncpg.Pool, user_id: uuid.UUID, template_id: uuid.UUID,
                 changes: Mapping[str, str]) -> Template:
    """Apply the given fields (name, subject, html_body, text_body) and re-validate the whole."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["templates.lock_own"], template_id, user_id)
        if row is None:
            raise NotFound("template not found", field="id")
        merged = {k: changes.get(k, row[k]) for k in ("name", "subject", "html_body", "text_body")}
        if not merged["html_body"].strip() and not merged["text_body"].strip():
            if "html_body" in changes and "text_body" in changes:
                raise ValidationError("html_body or text_body must be non-empty", field="html_body")
            # The member given is fine alone; with what is stored, no body would be left.
            raise Conflict("html_body or text_body must stay non-empty", field="html_body")
        check(**merged)
        updated = await conn.fetchrow(Q["templates.update"], template_id, merged["name"], merged["subject"],
                                      merged["html_body"], merged["text_body"])
        return row_struct(Template, updated)


async def delete(pool: asyncpg.Pool, user_id: uuid.UUID, template_id: uuid.UUID) -> None:
    """Delete an own template; TEMPLATE_IN_USE while a pending, running or paused campaign uses it."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(Q["templates.lock_own"], template_id, user_id) is None:
            raise NotFound("template not found", field="id")
        if await conn.fetchval(Q["templates.in_use"], template_id):
            raise TemplateInUse("template is used by a pending, running or paused campaign", field="id")
        await conn.execute(Q["templates.unlink_finished"], template_id)
        await conn.execute(Q["templates.delete"], template_id)


async def own_contact_vars(pool: asyncpg.Pool, user_id: uuid.UUID, contact_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow(Q["templates.contact_vars"], contact_id, user_id)
    if row is None:
        raise NotFound("contact not found", field="contact_id")
    return contact_vars(row["email"], row["name"], row["fields"])


async def preview(pool: asyncpg.Pool, user_id: uuid.UUID, template_id: uuid.UUID,
                  variables: Mapping[str, Any]) -> Rendered:
    t = await get_own(pool, user_id, template_id)
    return render(compile_template(t.subject, t.html_body, t.text_body), variables)
