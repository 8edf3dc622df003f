"""Health and the API's own description."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
from aiohttp import web

from api import openapi
from api.envelope import ok
from api.routing import ROUTER, Call, Routes
from engine.live.leadership import LeaderView, read_leader

routes = Routes()


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    database: bool
    redis: bool
    # Which engine leads and since when (absent when the database is unreachable or no
    # engine has led yet); `live` false means no engine dispatches right now.
    leader: LeaderView | None = None


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
    leader = None
    if db:
        with contextlib.suppress(Exception):
            leader = await asyncio.wait_for(read_leader(d.pool), timeout=2)
    data = Health("ok" if db and rd else "degraded", db, rd, leader)
    return ok(call.request, data, status=200 if db and rd else 503)


@routes.route("GET", "/openapi.json", summary="This document", access="public", tag="system")
async def openapi_document(call: Call) -> web.Response:
    return web.json_response(openapi.build(call.request.app[ROUTER].specs))
