"""Prometheus metrics of the engine and the API, in a registry of their own (never the global one)."""

from __future__ import annotations

from typing import Iterable, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

Outcome = Literal["sent", "failed", "throttled", "not_sent", "unknown"]

# Dispatch aims at a few tens of milliseconds after a service frees (DESIGN.md section 6).
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The control API's budget is p99 under 200 ms.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
# How long the shared event loop was held by others when a timer was due (engine/infra/loop_lag.py).
LOOP_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class StreamStats(Protocol):
    """What the metrics read from the event-stream publisher."""

    @property
    def buffered(self) -> int: ...

    dropped: int
    published: int


class EngineMetrics:
    """Every metric the product exposes; handed to the dispatcher and the API by the composition root."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sends = Counter("edm_sends", "Send requests by service and outcome.", ["service", "outcome"],
                             registry=r)
        # Each (service, outcome)'s counter, looked up once: `labels` validates and locks per call,
        # and every request counts one.
        self._sends: dict[tuple[str, str], Counter] = {}
        self.queue_depth = Gauge("edm_queue_depth", "Subtasks claimed in memory and waiting for a service.",
                                 registry=r)
        self.dispatch_lateness = Histogram(
            "edm_dispatch_lateness_seconds", "Request start minus the moment its service became free.",
            buckets=LATENESS_BUCKETS, registry=r)
        self.frozen_services = Gauge("edm_frozen_services", "Services abnormally frozen.", registry=r)
        self.settle_isolated_results = Counter(
            "edm_settle_isolated", "Results the database refused, isolated from their batch: rewritten as a "
            "clean failure, or set aside (dead) when even that was refused.", ["fate"], registry=r)
        self.api_request = Histogram("edm_api_request_seconds", "Control API latency by route pattern.",
                                     ["route", "method", "status"], buckets=REQUEST_BUCKETS, registry=r)
        self.loop_lag = Histogram(
            "edm_loop_lag_seconds", "How late a 10 ms timer fired: time the event loop was busy with other work.",
            buckets=LOOP_LAG_BUCKETS, registry=r)

    def sent(self, service_name: str, outcome: Outcome) -> None:
        child = self._sends.get((service_name, outcome))
        if child is None:
            child = self._sends[(service_name, outcome)] = self.sends.labels(service_name, outcome)
        child.inc()

    def lateness(self, seconds: float) -> None:
        # A request is never early; clock jitter must not produce negative observations.
        self.dispatch_lateness.observe(max(0.0, seconds))

    def set_queue_depth(self, n: int) -> None:
        self.queue_depth.set(n)

    def set_frozen(self, n: int) -> None:
        self.frozen_services.set(n)

    def settle_isolated(self, rewritten: bool) -> None:
        self.settle_isolated_results.labels("rewritten" if rewritten else "dead").inc()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.api_request.labels(route, method, str(status)).observe(seconds)

    def loop_lagged(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)

    def watch_event_stream(self, stats: StreamStats) -> None:
        """Expose the publisher's buffer and counters (read at scrape time)."""
        self.registry.register(_StreamCollector(stats))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class _StreamCollector(Collector):
    def __init__(self, stats: StreamStats):
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("edm_event_stream_buffered", "Events waiting to be written to Redis.",
                                value=self.stats.buffered)
        yield CounterMetricFamily("edm_event_stream_dropped", "Events lost because the buffer was full.",
                                  value=self.stats.dropped)
        yield CounterMetricFamily("edm_event_stream_published", "Events written to the Redis stream.",
                                  value=self.stats.published)
