"""The aiohttp application factory."""

from __future__ import annotations

from aiohttp import web

from api.deps import DEPS, Deps
from api.metrics_view import install as install_metrics, metrics_middleware
from api.middleware import error_middleware, request_id_middleware
from api.router import router
from api.routing import Call

# Importing the view modules registers their routes.
from api.views import (  # noqa: F401
    auth,
    campaign_actions,
    campaigns,
    contacts,
    events,
    monitor,
    senders,
    service_actions,
    services,
    system,
    tags,
    templates,
    user_services,
    users,
)


def init_app(d: Deps) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, metrics_middleware, error_middleware],
        client_max_size=d.settings.max_body_bytes,
    )
    app[DEPS] = d
    router.install(app)
    # /health also answers at the root, for load balancers.
    app.router.add_get("/health", auth_free_health)
    install_metrics(app)  # GET /metrics at the root
    # Open SSE streams would otherwise hold up shutdown.
    app.on_shutdown.append(events.close_streams)
    return app


async def auth_free_health(request: web.Request) -> web.StreamResponse:
    return await system.health(Call(request, request.app[DEPS], None))
