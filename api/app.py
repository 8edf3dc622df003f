"""The aiohttp application factory: builds the route table from the view modules and wires
middlewares, /health, /metrics and shutdown hooks."""

from __future__ import annotations

from aiohttp import web

from api.cors import cors_middleware, parse_origins
from api.deps import DEPS, Deps
from api.metrics_view import install as install_metrics
from api.metrics_view import metrics_middleware
from api.middleware import error_middleware, request_id_middleware
from api.revocation import revocation_listener
from api.routing import ROUTER, Call, Router
from api.views import (
    alerts,
    api_tokens,
    auth,
    campaign_actions,
    campaign_policies,
    campaigns,
    contacts,
    domain_limits,
    events,
    feedback_reports,
    monitor,
    senders,
    service_actions,
    recipient_links,
    service_probe,
    services,
    suppression,
    system,
    tags,
    templates,
    test_sends,
    user_services,
    users,
    webhooks,
)


def build_router() -> Router:
    """Every route of /api/v1, in the order the OpenAPI document lists them."""
    return Router(auth.routes, api_tokens.routes, users.routes, services.routes, service_actions.routes,
                  service_probe.routes, user_services.routes,
                  senders.routes, tags.routes, contacts.routes, templates.routes, campaigns.routes,
                  campaign_actions.routes, campaign_policies.routes, domain_limits.routes, test_sends.routes, monitor.routes,
                  events.routes, alerts.routes, system.routes,
                  # feedback: webhooks and bounces in, suppression, public recipient links, reports
                  webhooks.routes, suppression.routes, recipient_links.routes, feedback_reports.routes)


def init_app(d: Deps) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, cors_middleware(parse_origins(d.settings.cors_origins)),
                     metrics_middleware, error_middleware],
        client_max_size=d.settings.max_body_bytes,
    )
    app[DEPS] = d
    router = build_router()
    app[ROUTER] = router
    router.install(app)
    # /health also answers at the root, for load balancers.
    app.router.add_get("/health", auth_free_health)
    install_metrics(app)  # GET /metrics at the root
    app.cleanup_ctx.append(revocation_listener)
    # Open SSE streams would otherwise hold up shutdown.
    app.on_shutdown.append(events.close_streams)
    return app


async def auth_free_health(request: web.Request) -> web.StreamResponse:
    return await system.health(Call(request, request.app[DEPS], None))
