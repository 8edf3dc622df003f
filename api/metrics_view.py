"""Prometheus: GET /metrics at the root, and the middleware that times every API request."""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from aiohttp import web

from api.deps import DEPS
from engine.live.metrics import EngineMetrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _metrics(request: web.Request) -> EngineMetrics | None:
    return request.app[DEPS].metrics


async def metrics(request: web.Request) -> web.Response:
    """The text exposition of every metric (no auth: scrapers sit on the operator's network)."""
    m = _metrics(request)
    body = m.render() if m is not None else b""
    return web.Response(body=body, headers={"Content-Type": EngineMetrics.content_type})


def _route(request: web.Request) -> str:
    """The route pattern, not the path: ids must not explode the label set."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    m = _metrics(request)
    if m is None:
        return await handler(request)
    started = time.perf_counter()
    status, streamed = 500, False
    try:
        response = await handler(request)
        status = response.status
        # A stream (SSE) lasts as long as the client stays: not a request latency.
        streamed = not isinstance(response, web.Response)
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if not streamed:
            m.request(_route(request), request.method, status, time.perf_counter() - started)


def install(app: web.Application) -> None:
    """Serve /metrics at the root (outside the /api/v1 router)."""
    app.router.add_get("/metrics", metrics)
