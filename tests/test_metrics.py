"""Prometheus metrics: the engine's counters in their own registry, /metrics, and API latency by route."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.app import init_app
from api.metrics_view import install, metrics_middleware
from engine.infra.loop_lag import LoopLagMonitor
from engine.live.event_stream import RedisStreamPublisher
from engine.live.metrics import EngineMetrics
from engine.store.accounts import create_user
from tests.conftest import Api


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_engine_metrics_record_into_their_own_registry() -> None:
    m = EngineMetrics()
    m.sent("svc-a", "sent")
    m.sent("svc-a", "sent")
    m.sent("svc-a", "failed")
    m.lateness(0.004)
    m.lateness(-0.5)  # clock jitter: counted as on time
    m.set_queue_depth(42)
    m.set_frozen(1)
    got = samples(m.render().decode())
    assert got[("edm_sends_total", (("outcome", "sent"), ("service", "svc-a")))] == 2
    assert got[("edm_sends_total", (("outcome", "failed"), ("service", "svc-a")))] == 1
    assert got[("edm_queue_depth", ())] == 42
    assert got[("edm_frozen_services", ())] == 1
    assert got[("edm_dispatch_lateness_seconds_count", ())] == 2
    assert got[("edm_dispatch_lateness_seconds_bucket", (("le", "0.005"),))] == 2
    assert got[("edm_dispatch_lateness_seconds_bucket", (("le", "0.001"),))] == 1
    # A second instance starts from zero and the process-wide default registry stays clean.
    assert ("edm_sends_total", (("outcome", "sent"), ("service", "svc-a"))) not in samples(
        EngineMetrics().render().decode())
    assert REGISTRY.get_sample_value("edm_sends_total", {"service": "svc-a", "outcome": "sent"}) is None


def test_event_stream_counters_are_read_at_scrape_time() -> None:
    import redis.asyncio as aioredis

    m = EngineMetrics()
    publisher = RedisStreamPublisher(aioredis.from_url("redis://127.0.0.1:1"), buffer_size=2)
    m.watch_event_stream(publisher)
    for _ in range(3):
        publisher.publish({"kind": "alert"})
    got = samples(m.render().decode())
    assert got[("edm_event_stream_buffered", ())] == 2
    assert got[("edm_event_stream_dropped_total", ())] == 1
    assert got[("edm_event_stream_published_total", ())] == 0


@pytest.fixture
async def metered(deps) -> AsyncIterator[tuple[TestClient, EngineMetrics]]:
    """The app with /metrics and the timing middleware, wired the way the composition root does it."""
    metrics = EngineMetrics()
    deps.metrics = metrics
    app = init_app(deps)
    if metrics_middleware not in app.middlewares:
        # Inside request ids, outside the error middleware: errors are timed with their real status.
        app.middlewares.insert(1, metrics_middleware)
    if not any(getattr(r, "canonical", None) == "/metrics" for r in app.router.resources()):
        install(app)
    async with TestClient(TestServer(app)) as c:
        yield c, metrics


async def test_metrics_endpoint_exposes_engine_and_api_metrics(metered, deps) -> None:
    client, metrics = metered
    root = await create_user(deps.pool, deps.passwords, "root", "root@example.com", "admin-password", role="admin")
    admin = await Api(client).login("root", "admin-password")
    await admin.ok("GET", f"/users/{root.id}")
    await admin.ok("GET", f"/users/{root.id}")
    await admin.err("GET", "/users/00000000-0000-0000-0000-000000000000", 404, "NOT_FOUND")
    await admin.as_(None).err("GET", "/monitor/overview", 401, "UNAUTHORIZED")
    await client.get("/nowhere")
    metrics.sent("svc-b", "throttled")
    metrics.set_queue_depth(7)

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    for name in ("edm_sends_total", "edm_queue_depth", "edm_dispatch_lateness_seconds", "edm_frozen_services",
                 "edm_api_request_seconds"):
        assert f"# TYPE {name}" in text or f"# TYPE {name.removesuffix('_total')}" in text, name
    got = samples(text)
    count = "edm_api_request_seconds_count"
    # Labelled by route pattern, never by the concrete path.
    assert got[(count, (("method", "GET"), ("route", "/api/v1/users/{id}"), ("status", "200")))] == 2
    assert got[(count, (("method", "GET"), ("route", "/api/v1/users/{id}"), ("status", "404")))] == 1
    assert got[(count, (("method", "GET"), ("route", "/api/v1/monitor/overview"), ("status", "401")))] == 1
    assert got[(count, (("method", "POST"), ("route", "/api/v1/auth/login"), ("status", "200")))] == 1
    assert got[(count, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert got[("edm_sends_total", (("outcome", "throttled"), ("service", "svc-b")))] == 1
    assert got[("edm_queue_depth", ())] == 7


def test_install_mounts_metrics_at_the_root() -> None:
    app = web.Application()
    install(app)
    assert [r.canonical for r in app.router.resources()] == ["/metrics"]


async def test_loop_lag_measures_a_synchronous_stall() -> None:
    m = EngineMetrics()
    monitor = LoopLagMonitor(m.loop_lagged, interval=0.01)
    monitor.start()
    await asyncio.sleep(0.03)  # a few quiet ticks
    time.sleep(0.06)  # holds the loop: the pending 10 ms timer fires at least 50 ms late
    await asyncio.sleep(0.03)
    await monitor.stop()
    got = samples(m.render().decode())
    assert got[("edm_loop_lag_seconds_count", ())] >= 2
    # The stall lands above 25 ms whatever else the machine does (load only adds lag).
    assert got[("edm_loop_lag_seconds_count", ())] - got[("edm_loop_lag_seconds_bucket", (("le", "0.025"),))] >= 1
    assert got[("edm_loop_lag_seconds_sum", ())] >= 0.05
