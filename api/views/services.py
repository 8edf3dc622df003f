"""Sending services (admin): configuration, live state, manual quota and the status log."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from api.paging import PageQuery
from api.routing import Call, Routes
from engine.store import archive
from engine.store.archive import Archived
from engine.store.rows import Page
from engine.store.service_models import Service, ServiceInBody, ServicePatchBody, StatusEntry
from engine.store.services import ServiceStore

routes = Routes()


class RemainingIn(msgspec.Struct, forbid_unknown_fields=True):
    remaining: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


def _store(call: Call) -> ServiceStore:
    d = call.deps
    return ServiceStore(d.pool, d.box, d.clock, d.settings.tz)


async def _changed(call: Call, service_id: uuid.UUID) -> None:
    """Tell the running engine to reload the service (routing, freezes, reset schedule)."""
    if call.deps.engine is not None:
        await call.deps.engine.services_changed(service_id)


@routes.route("POST", "/services", summary="Create a sending service", access="admin", body=ServiceInBody,
              response=Service, status=201, tag="services")
async def create_service(call: Call) -> Service:
    service = await _store(call).create(call.body, call.me.id)
    await _changed(call, service.id)
    return service


class ServiceQuery(PageQuery, forbid_unknown_fields=True):
    # true: the archived (deleted) services instead, to restore one.
    archived: bool = False


@routes.route("GET", "/services", summary="List sending services with their live state (?archived=true: the deleted ones)",
              access="admin", query=ServiceQuery, response=Page[Service], tag="services")
async def list_services(call: Call) -> Page[Service]:
    return await _store(call).list(call.query.limit, call.query.offset, call.query.archived)


@routes.route("GET", "/services/{id}", summary="Get a sending service", access="admin", response=Service,
              tag="services")
async def get_service(call: Call) -> Service:
    return await _store(call).get(call.id())


@routes.route("PATCH", "/services/{id}", summary="Change any field; credentials are replaced whole",
              access="admin", body=ServicePatchBody, response=Service, tag="services")
async def update_service(call: Call) -> Service:
    service, changed = await _store(call).update(call.id(), call.body, call.me.id)
    if changed:
        await _changed(call, service.id)
    return service


@routes.route("POST", "/services/{id}/enable", summary="Enable a sending service", access="admin",
              response=Service, tag="services")
async def enable_service(call: Call) -> Service:
    service, changed = await _store(call).set_enabled(call.id(), True, call.me.id)
    if changed:
        await _changed(call, service.id)
    return service


@routes.route("POST", "/services/{id}/disable", summary="Disable a sending service", access="admin",
              response=Service, tag="services")
async def disable_service(call: Call) -> Service:
    service, changed = await _store(call).set_enabled(call.id(), False, call.me.id)
    if changed:
        await _changed(call, service.id)
    return service


@routes.route("PUT", "/services/{id}/remaining", summary="Set today's remaining quota by hand (logged)",
              access="admin", body=RemainingIn, response=Service, tag="services")
async def set_remaining(call: Call) -> Service:
    service = await _store(call).set_remaining(call.id(), call.body.remaining, call.body.reason, call.me.id)
    if call.deps.engine is not None:
        await call.deps.engine.remaining_set(service.id, call.body.remaining)
    return service


@routes.route("GET", "/services/{id}/status-log", summary="A service's status log, newest first",
              access="admin", query=PageQuery, response=Page[StatusEntry], tag="services")
async def status_log(call: Call) -> Page[StatusEntry]:
    return await _store(call).status_log(call.id(), call.query.limit, call.query.offset)


@routes.route("DELETE", "/services/{id}", summary="Delete (archive) a service; 409 SERVICE_IN_USE while campaigns may use it",
              access="admin", response=Archived, tag="services")
async def delete_service(call: Call) -> Archived:
    service_id = call.id()
    archived = await archive.archive_service(call.deps.pool, service_id, call.me.id, call.deps.clock.now())
    await _changed(call, service_id)
    return archived


@routes.route("POST", "/services/{id}/restore", summary="Restore an archived service (it stays disabled and unmapped)",
              access="admin", response=Service, tag="services")
async def restore_service(call: Call) -> Service:
    service_id = call.id()
    await archive.restore_service(call.deps.pool, service_id, call.me.id)
    await _changed(call, service_id)
    return await _store(call).get(service_id)
