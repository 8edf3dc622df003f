"""Email templates: the caller's own, with a rendered preview."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

from api.paging import PageQuery
from api.routing import Call, Routes
from api.views.senders import Deleted
from engine.domain.errors import ValidationError
from engine.store import templates
from engine.store.rows import Page
from engine.store.templates import Template, TemplateSummary
from engine.templating.rendering import Rendered, contact_vars

routes = Routes()

# The patterns state engine.store.templates.check in the document (check gives the messages).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, extra_json_schema={"pattern": r"\S"})]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=998,
                                      extra_json_schema={"pattern": r"^[^\r\n]*\S[^\r\n]*$(?!\n)"})]
Body = Annotated[str, msgspec.Meta(max_length=1_000_000)]


class TemplateCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    subject: Subject
    html_body: Body = ""
    text_body: Body = ""


# At least one of the bodies has a non-blank character.
EITHER_BODY = {"anyOf": [{"required": [part], "properties": {part: {"pattern": r"\S"}}}
                         for part in ("html_body", "text_body")]}
TemplateCreateBody = Annotated[TemplateCreate, msgspec.Meta(extra_json_schema=EITHER_BODY)]


class TemplateUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields given change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    subject: Subject | msgspec.UnsetType = msgspec.UNSET
    html_body: Body | msgspec.UnsetType = msgspec.UNSET
    text_body: Body | msgspec.UnsetType = msgspec.UNSET


# Both bodies given and both blank is malformed in itself (one blank body may be fine, depending
# on the stored other: 409 CONFLICT when it is not).
TemplateUpdateBody = Annotated[TemplateUpdate, msgspec.Meta(extra_json_schema={"not": {
    "required": ["html_body", "text_body"],
    "properties": {"html_body": {"pattern": r"^\s*$"}, "text_body": {"pattern": r"^\s*$"}}}})]


class PreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """Either an own contact's id, or the variables given inline."""

    contact_id: uuid.UUID | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    fields: dict[str, Any] | None = None


# A contact id, or inline variables, never both (null counts as absent).
_INLINE = [{"required": [k], "properties": {k: {"not": {"type": "null"}}}} for k in ("email", "name", "fields")]
PreviewBody = Annotated[PreviewIn, msgspec.Meta(extra_json_schema={"not": {
    "required": ["contact_id"], "properties": {"contact_id": {"not": {"type": "null"}}}, "anyOf": _INLINE}})]


@routes.route("POST", "/templates", summary="Create a template (syntax checked: TEMPLATE_ERROR with the line)",
              body=TemplateCreateBody, response=Template, status=201, tag="templates")
async def post_template(call: Call) -> Template:
    b = call.body
    return await templates.create(call.deps.pool, call.me.id, b.name, b.subject, b.html_body, b.text_body)


@routes.route("GET", "/templates", summary="List own templates", query=PageQuery, response=Page[TemplateSummary],
              tag="templates")
async def list_templates(call: Call) -> Page[TemplateSummary]:
    q = call.query
    return await templates.list_own(call.deps.pool, call.me.id, q.limit, q.offset)


@routes.route("GET", "/templates/{id}", summary="Get an own template", response=Template, tag="templates")
async def get_template(call: Call) -> Template:
    return await templates.get_own(call.deps.pool, call.me.id, call.id())


@routes.route("PATCH", "/templates/{id}", summary="Update an own template", body=TemplateUpdateBody, response=Template,
              tag="templates")
async def patch_template(call: Call) -> Template:
    changes = {k: v for k, v in msgspec.structs.asdict(call.body).items() if v is not msgspec.UNSET}
    return await templates.update(call.deps.pool, call.me.id, call.id(), changes)


@routes.route("DELETE", "/templates/{id}", summary="Delete an own template (TEMPLATE_IN_USE while an active campaign uses it)",
              response=Deleted, tag="templates")
async def delete_template(call: Call) -> Deleted:
    template_id = call.id()
    await templates.delete(call.deps.pool, call.me.id, template_id)
    return Deleted(template_id)


@routes.route("POST", "/templates/{id}/preview", summary="Render an own template for a contact or inline variables",
              body=PreviewBody, response=Rendered, tag="templates")
async def preview_template(call: Call) -> Rendered:
    b, pool, me = call.body, call.deps.pool, call.me.id
    template_id = call.id()
    if b.contact_id is not None:
        if b.email is not None or b.name is not None or b.fields is not None:
            raise ValidationError("give contact_id or email/name/fields, not both", field="contact_id")
        variables = await templates.own_contact_vars(pool, me, b.contact_id)
    else:
        variables = contact_vars(b.email or "", b.name or "", b.fields)
    return await templates.preview(pool, me, template_id, variables)
