"""The suppression list: yours (`/suppressions`) or, for admins, the admin-wide one
(`?scope=global`) or any user's (`?user_id=`). Add, remove (with a reason, logged), CSV in and out."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from api.feedback_deps import after_feedback, suppression_store
from api.paging import Limit, Offset
from api.routing import Call, Routes
from engine.domain.errors import Forbidden
from engine.store.rows import Page
from engine.store.suppression import Suppression

routes = Routes()

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Scope(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["mine", "global"] = "mine"
    user_id: uuid.UUID | None = None


class ListQuery(Scope, forbid_unknown_fields=True):
    q: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    limit: Limit = 50
    offset: Offset = 0


class AddIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    reason: Reason


class RemoveIn(AddIn, forbid_unknown_fields=True):
    pass


class Added(msgspec.Struct):
    email: str
    added: bool


class Imported(msgspec.Struct):
    added: int
    already_listed: int


def _owner(call: Call, q: Scope) -> uuid.UUID | None:
    """Whose list: the caller's; admins may name the global list or another user's."""
    if q.scope == "global" or q.user_id is not None:
        if not call.me.is_admin:
            raise Forbidden("administrators only", field="scope" if q.scope == "global" else "user_id")
        return None if q.scope == "global" else q.user_id
    return call.me.id


@routes.route("GET", "/suppressions", summary="List a suppression list (paged, searchable by address)",
              query=ListQuery, response=Page[Suppression], tag="suppression")
async def list_suppressions(call: Call) -> Page[Suppression]:
    q: ListQuery = call.query
    return await suppression_store(call.deps).list(_owner(call, q), q.q, q.limit, q.offset)


@routes.route("POST", "/suppressions", summary="Suppress an address (its pending sends are cancelled, refunded)",
              query=Scope, body=AddIn, response=Added, status=201, tag="suppression")
async def add_suppression(call: Call) -> Added:
    d = call.deps
    added, refunded = await suppression_store(d).add(_owner(call, call.query), call.body.email, call.body.reason,
                                                     call.me.id, d.clock.now())
    await after_feedback(d, refunded, [])
    return Added(call.body.email.strip().lower(), added)


@routes.route("POST", "/suppressions/remove", summary="Take an address off the list (reason logged)",
              query=Scope, body=RemoveIn, response=Added, tag="suppression")
async def remove_suppression(call: Call) -> Added:
    d = call.deps
    await suppression_store(d).remove(_owner(call, call.query), call.body.email, call.body.reason, call.me.id,
                                      d.clock.now())
    return Added(call.body.email.strip().lower(), False)


@routes.route("POST", "/suppressions/import", summary="Import addresses from CSV (an `email` column)",
              query=Scope, raw_body="text/csv", response=Imported, tag="suppression")
async def import_suppressions(call: Call) -> Imported:
    d = call.deps
    added, existing, refunded = await suppression_store(d).import_csv(
        _owner(call, call.query), await call.request.read(), call.me.id, d.clock.now())
    await after_feedback(d, refunded, [])
    return Imported(added, existing)


@routes.route("GET", "/suppressions/export", summary="Export a suppression list as CSV", query=Scope,
              tag="suppression")
async def export_suppressions(call: Call) -> web.Response:
    text = await suppression_store(call.deps).export_csv(_owner(call, call.query))
    return web.Response(text=text, content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'})
