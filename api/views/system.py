"""Health and the API's own description."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from api import openapi
from api.envelope import ok
from api.routing import ROUTER, Call, Routes

routes = Routes()


class Health(msgspec.Struct):
    status: str
    database: bool
    redis: bool


async def _probe(coro) -> bool:  # type: ignore[no-untyped-def]
    try:
        await asyncio.wait_for(coro, timeout=2)
        return True
    except Exception:
        return False


@routes.route("GET", "/health", summary="Database and Redis reachability", access="public", response=Health,
              tag="system")
async def health(call: Call) -> web.Response:
    d = call.deps
    db = await _probe(d.pool.fetchval("SELECT 1"))
    rd = await _probe(d.redis.ping())
    data = Health("ok" if db and rd else "degraded", db, rd)
    return ok(call.request, data, status=200 if db and rd else 503)


@routes.route("GET", "/openapi.json", summary="This document", access="public", tag="system")
async def openapi_document(call: Call) -> web.Response:
    return web.json_response(openapi.build(call.request.app[ROUTER].specs))
