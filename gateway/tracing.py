"""OpenTelemetry tracing, switched on by Dittofeed's `START_OTEL=true`: what a span may say.

`configure_tracing` builds the SDK's TracerProvider: a Resource named by `OTEL_SERVICE_NAME` (else
`feedgate-api`, or `feedgate-worker` for `feedgate worker`) and a batch exporter speaking OTLP over
HTTP. Everything else an operator tunes is the SDK's own standard variables, read by the SDK itself:
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_PYTHON_ASGI_EXCLUDED_URLS`.
With tracing off nothing here imports OpenTelemetry, so a gateway without it pays nothing.

`traced` puts one server span around every HTTP request, with the same discretion as the access log
(gateway.request_log): the span is named by method and route *template* (`GET /api/admin/segments/`),
never the raw path, and the query string's credential values (`token=`, `code=`, `apiKey=`, ...) are
redacted from every attribute that carries it. `traced_tasks` gives each worker period its own span.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.worker import PeriodicTask
from gateway.request_log import redact_query, route_template
from gateway.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

API_SERVICE_NAME = "feedgate-api"
WORKER_SERVICE_NAME = "feedgate-worker"
TRACER_NAME = "feedgate"
# Span attributes that carry the query string, in the old and the stable HTTP semantic conventions
# (OTEL_SEMCONV_STABILITY_OPT_IN picks which the instrumentation writes).
_QUERY_ATTRIBUTES = ("url.query",)
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")


def configure_tracing(
    settings: Settings,
    *,
    service_name: str = API_SERVICE_NAME,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """The tracer provider START_OTEL asks for, or None when tracing is off. `exporter` defaults to
    OTLP over HTTP (endpoint from the standard variables); release the provider with `shutdown()`,
    which sends what is still queued."""
    if not settings.start_otel:
        return None
    # Imported here, not at the top: with tracing off the SDK is never loaded.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Our default name first, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME on top of it, so the
    # operator's name wins as the OpenTelemetry specification says it should.
    resource = Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
    return provider


def traced(app: Starlette, provider: TracerProvider | None) -> Starlette:
    """Give `app` a server span per request, exported through `provider`; with None, `app` as it is.

    The span layer goes outermost of the app's own middleware (so it covers the prefix strip, the
    access log and body limits) and a naming layer innermost, where the route is known. Call before
    the app serves its first request; calling again replaces the provider rather than nesting spans."""
    if provider is None:
        return app
    if app.middleware_stack is not None:
        raise RuntimeError("traced() must be called before the app serves its first request")
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.util.http import get_excluded_urls

    tracing_layers: tuple[object, ...] = (OpenTelemetryMiddleware, NameSpanByRoute)
    kept = [m for m in app.user_middleware if m.cls not in tracing_layers]
    app.user_middleware[:] = [
        Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=provider,
            # Traces only: request metrics are gateway.metrics' job.
            meter_provider=NoOpMeterProvider(),
            excluded_urls=get_excluded_urls("ASGI"),
            # Named before routing, so by method alone until NameSpanByRoute knows the template.
            default_span_details=name_span_by_method,
            server_request_hook=redact_span_query,
            # A child span per ASGI message doubles the volume and says nothing the server span does not.
            exclude_spans=["receive", "send"],
        ),
        *kept,
        Middleware(NameSpanByRoute),
    ]
    return app


def name_span_by_method(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The span name before routing: the HTTP method alone (the raw path may hold ids)."""
    return _span_method(scope), {}


def redact_span_query(span: Span, scope: Scope) -> None:
    """Server request hook: rewrite every attribute that copied the query string with its
    credential-like values redacted, as the access log does."""
    raw = scope.get("query_string", b"")
    if not raw or not span.is_recording():
        return
    safe = redact_query(raw.decode("latin-1"))
    attributes = getattr(span, "attributes", None) or {}
    for key in _QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, safe)
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0] + "?" + safe)


class NameSpanByRoute:
    """Innermost ASGI middleware: once the router has matched, rename the current server span to
    `METHOD /route/{template}` and record `http.route`. It runs at the response's start (the server
    span ends with the body) or, when the app raised before answering, as the exception passes; then
    the span also gets the 500 that Starlette's error middleware, outside the span layer, will send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        named = False

        async def send_naming_span(message: Message) -> None:
            nonlocal named
            if message["type"] == "http.response.start" and not named:
                named = True
                _name_current_span(scope)
            await send(message)

        try:
            await self.app(scope, receive, send_naming_span)
        except Exception:
            if not named:
                named = True
                _name_current_span(scope, crashed=True)
            raise


def _name_current_span(scope: Scope, *, crashed: bool = False) -> None:
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    template = route_template(scope)
    if template is not None:
        span.update_name(f"{_span_method(scope)} {template}")
        span.set_attribute("http.route", template)
    if crashed:
        # The status attribute of whichever HTTP conventions the instrumentation writes (it set the
        # method under the matching name when the span started).
        attributes = getattr(span, "attributes", None) or {}
        if "http.method" in attributes:
            span.set_attribute("http.status_code", 500)
        if "http.request.method" in attributes:
            span.set_attribute("http.response.status_code", 500)


def _span_method(scope: Scope) -> str:
    from opentelemetry.util.http import sanitize_method

    method = sanitize_method(str(scope.get("method", "")).strip())
    # The instrumentation's own word for a method outside the standard set.
    return "HTTP" if method == "_OTHER" else method


class TracedTask:
    """A worker task whose every period is one span, `worker <task name>`; a period that raises
    ends its span in error (with the exception recorded) and the exception goes on to the worker."""

    def __init__(self, task: PeriodicTask, tracer: Tracer) -> None:
        self.task = task
        self.tracer = tracer
        self.name = task.name

    def run_once(self) -> None:
        with self.tracer.start_as_current_span(
            f"worker {self.name}", attributes={"feedgate.worker.task": self.name}
        ):
            self.task.run_once()


def traced_tasks(
    tasks: Sequence[tuple[PeriodicTask, float]], provider: TracerProvider | None
) -> list[tuple[PeriodicTask, float]]:
    """The worker's `(task, period)` list with each task traced through `provider` (None: as is)."""
    if provider is None:
        return list(tasks)
    tracer = provider.get_tracer(TRACER_NAME)
    return [(TracedTask(task, tracer), period) for task, period in tasks]
