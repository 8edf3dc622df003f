"""The user ↔ services mapping (admin) and the caller's own services."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from api.routing import Call, Routes
from engine.store.service_maps import get_services, replace_services
from engine.store.service_models import UserServices

routes = Routes()


class MappingIn(msgspec.Struct, forbid_unknown_fields=True):
    service_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=10_000)]


@routes.route("PUT", "/users/{id}/services", summary="Replace a user's whole set of sending services",
              access="admin", body=MappingIn, response=UserServices, tag="services")
async def put_user_services(call: Call) -> UserServices:
    d, user_id = call.deps, call.id()
    mapping = await replace_services(d.pool, d.settings.tz, user_id, call.body.service_ids, call.me.id)
    if d.engine is not None:
        await d.engine.mapping_changed(user_id)
    return mapping


@routes.route("GET", "/users/{id}/services", summary="A user's sending services", access="admin",
              response=UserServices, tag="services")
async def get_user_services(call: Call) -> UserServices:
    return await get_services(call.deps.pool, call.deps.settings.tz, call.id())


@routes.route("GET", "/me/services", summary="The caller's own sending services (names and state)",
              response=UserServices, tag="auth")
async def my_services(call: Call) -> UserServices:
    return await get_services(call.deps.pool, call.deps.settings.tz, call.me.id)
