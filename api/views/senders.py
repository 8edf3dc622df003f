"""Senders: the caller's own from-address local parts."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from api.paging import PageQuery
from api.routing import Call, Routes
from engine.store import senders
from engine.store.rows import Page
from engine.store.senders import Sender

routes = Routes()

# The document's statement of engine.store.senders.check_name (which gives the friendlier message).
SENDER_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9_-](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?$(?!\n)"


class SenderCreate(msgspec.Struct, forbid_unknown_fields=True):
    # The character rules are checked by engine.store.senders.check_name, with a message that names them.
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                      description="1-64 of A-Z a-z 0-9 . _ -; no leading/trailing '.', no '..'",
                                      extra_json_schema={"pattern": SENDER_NAME_PATTERN})]


class Deleted(msgspec.Struct):
    id: uuid.UUID
    deleted: bool = True


@routes.route("POST", "/senders", summary="Create a sender (unique system-wide, case-insensitively)",
              body=SenderCreate, response=Sender, status=201, tag="senders")
async def post_sender(call: Call) -> Sender:
    return await senders.create(call.deps.pool, call.me.id, call.body.name)


@routes.route("GET", "/senders", summary="List own senders", query=PageQuery, response=Page[Sender],
              tag="senders")
async def list_senders(call: Call) -> Page[Sender]:
    q = call.query
    return await senders.list_own(call.deps.pool, call.me.id, q.limit, q.offset)


@routes.route("GET", "/senders/{id}", summary="Get an own sender", response=Sender, tag="senders")
async def get_sender(call: Call) -> Sender:
    return await senders.get_own(call.deps.pool, call.me.id, call.id())


@routes.route("DELETE", "/senders/{id}", summary="Delete an own sender (SENDER_IN_USE while an active campaign uses it)",
              response=Deleted, tag="senders")
async def delete_sender(call: Call) -> Deleted:
    sender_id = call.id()
    await senders.delete(call.deps.pool, call.me.id, sender_id)
    return Deleted(sender_id)
