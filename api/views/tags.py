"""A user's own tags."""

from __future__ import annotations

from api.paging import PageQuery
from api.routing import Call, Routes
from engine.store import tags
from engine.store.contact_models import Deleted, Tag, TagIn
from engine.store.rows import Page

routes = Routes()


@routes.route("POST", "/tags", summary="Create a tag (names are unique per user, case-insensitively)",
              body=TagIn, response=Tag, status=201, tag="tags")
async def create_tag(call: Call) -> Tag:
    return await tags.create_tag(call.deps.pool, call.me.id, call.body.name)


@routes.route("GET", "/tags", summary="List the caller's tags with their contact counts, by name",
              query=PageQuery, response=Page[Tag], tag="tags")
async def list_tags(call: Call) -> Page[Tag]:
    q = call.query
    return await tags.list_tags(call.deps.pool, call.me.id, q.limit, q.offset)


@routes.route("GET", "/tags/{id}", summary="Get a tag with its contact count", response=Tag, tag="tags")
async def get_tag(call: Call) -> Tag:
    return await tags.get_tag(call.deps.pool, call.me.id, call.id())


@routes.route("PATCH", "/tags/{id}", summary="Rename a tag", body=TagIn, response=Tag, tag="tags")
async def rename_tag(call: Call) -> Tag:
    return await tags.rename_tag(call.deps.pool, call.me.id, call.id(), call.body.name)


@routes.route("DELETE", "/tags/{id}", summary="Delete a tag and its links to contacts (contacts stay)",
              response=Deleted, tag="tags")
async def delete_tag(call: Call) -> Deleted:
    tag_id = call.id()
    await tags.delete_tag(call.deps.pool, call.me.id, tag_id)
    return Deleted(tag_id)
