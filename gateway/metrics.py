"""Prometheus metrics: what feedgate counts, the ASGI middleware that counts requests, and `/metrics`.

One `Metrics` per app, on a registry of its own (tests build many apps in one process, and the
global registry refuses a second metric of the same name). Every label has a small, fixed set of
values, so a scanner cannot grow the series without bound: a route is its path template or
`<unmatched>`, a method one of the HTTP methods or `OTHER`, a provider a provider type, a result one
of the four send result types. Nothing from a request's headers, query or body becomes a label, so
the page cannot leak a key or a token; it is still only mounted when the operator turns it on.

The engine knows nothing of Prometheus. It reports through plain callables the gateway hands it:
`Metrics.record_send(provider, result)` and `Metrics.watch_compute(last_completed)`, where
`last_completed()` returns the time up to which the compute loop's last full pass brought every
workspace (None before the first).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    GC_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.event_writer import EventWriter
from engine.events import EventRow
from gateway.request_log import route_template

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Request latencies: from a cached read (~1 ms) to a large CSV upload or a recompute (~30 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

LastCompleted = Callable[[], datetime | None]


class Metrics:
    """The metric objects of one process, on their own registry."""

    def __init__(self, *, process_collectors: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process_collectors:
            # CPU, memory, file descriptors and GC of this process: the same names every exporter uses.
            self.registry.register(PROCESS_COLLECTOR)
            self.registry.register(GC_COLLECTOR)
        self.http_requests = Counter(
            "feedgate_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "feedgate_http_request_duration_seconds",
            "Time from request to the end of the response, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "feedgate_events_accepted",
            "Events acknowledged to HTTP callers (stored durably; duplicates included).",
            registry=self.registry,
        )
        self.sends = Counter(
            "feedgate_sends",
            "Messages handed to a provider, by provider type and result "
            "(Success, Skipped, NonRetryableError, RetryableError).",
            ["provider", "result"],
            registry=self.registry,
        )
        self._compute = _ComputeLag()
        self.registry.register(self._compute)

    def record_request(self, route: str | None, method: str, status: int, seconds: float) -> None:
        route_label = route or UNMATCHED_ROUTE
        method_label = method if method in KNOWN_METHODS else "OTHER"
        self.http_requests.labels(route_label, method_label, str(status)).inc()
        self.http_latency.labels(route_label, method_label).observe(seconds)

    def record_events_accepted(self, count: int) -> None:
        self.events_accepted.inc(count)

    def record_send(self, provider: str, result: str) -> None:
        """Fits the engine's send observer: one call per send attempt that reached a result."""
        self.sends.labels(provider, result).inc()

    def watch_compute(self, last_completed: LastCompleted) -> None:
        """Report `feedgate_compute_lag_seconds` as now minus the latest of what the sources return."""
        self._compute.sources.append(last_completed)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ComputeLag(Collector):
    """How far behind the compute loop's last completed pass is; absent until a pass completes."""

    def __init__(self) -> None:
        self.sources: list[LastCompleted] = []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "feedgate_compute_lag_seconds",
            "Seconds since the time up to which the last full compute pass brought every workspace.",
        )
        completed = [stamp for stamp in (source() for source in self.sources) if stamp is not None]
        if completed:
            family.add_metric([], max(0.0, (datetime.now(UTC) - max(completed)).total_seconds()))
        yield family


class MetricsMiddleware:
    """Pure ASGI middleware counting every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.record_request(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )


def metrics_routes(metrics: Metrics) -> list[Route]:
    """`GET /metrics` in the Prometheus text format; mount it only when metrics are switched on."""

    async def serve_metrics(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return [Route(METRICS_PATH, serve_metrics, methods=["GET"], name="metrics")]


class MeteredEventWriter:
    """An `EventWriter` that counts the rows it acknowledges; everything else is the writer's."""

    def __init__(self, writer: EventWriter, metrics: Metrics) -> None:
        self._writer = writer
        self._metrics = metrics

    def write(self, rows: Sequence[EventRow]) -> int:
        written = self._writer.write(rows)
        self._metrics.record_events_accepted(len(rows))
        return written

    def accept(self, rows: Sequence[EventRow]) -> None:
        self._writer.accept(rows)
        self._metrics.record_events_accepted(len(rows))

    async def accept_async(self, rows: Sequence[EventRow]) -> None:
        await self._writer.accept_async(rows)
        self._metrics.record_events_accepted(len(rows))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def serve_metrics_in_thread(metrics: Metrics, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104
    """For `feedgate worker`, which has no HTTP app: serve the registry on `port` from a daemon thread."""
    start_http_server(port, addr=host, registry=metrics.registry)
