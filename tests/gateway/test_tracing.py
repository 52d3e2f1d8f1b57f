"""OpenTelemetry tracing (START_OTEL=true): one server span per request named by method and route
template, never a credential from the query string in any attribute, a span per worker period, OTLP
over HTTP to the standard endpoint variable; with START_OTEL off nothing is built or wrapped."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from engine.worker import PeriodicTask, run_isolated
from gateway.app import create_app
from gateway.settings import Settings
from gateway.tracing import (
    API_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    configure_tracing,
    redact_span_query,
    traced,
    traced_tasks,
)
from tests.support.net import ThreadedServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "tok-SECRET-4f1d"
TEMPLATE_ID = "6f0d3c1e-2a4b-4c8d-9e0f-1a2b3c4d5e6f"
OTEL_VARIABLES = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_PYTHON_ASGI_EXCLUDED_URLS",
    "OTEL_PYTHON_EXCLUDED_URLS",
)


@pytest.fixture(autouse=True)
def plain_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads the standard OTEL_* variables itself; start each test without any."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def bare_settings(tmp_path: Path, *, start_otel: bool) -> Settings:
    """Settings for tests that open no store."""
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        clickhouse_url="http://127.0.0.1:1",
        secret_key="test-secret-key",
        start_otel=start_otel,
    )


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(tmp_path: Path, spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    built = configure_tracing(bare_settings(tmp_path, start_otel=True), exporter=spans)
    assert built is not None
    yield built
    built.shutdown()


def finished(provider: TracerProvider, spans: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    provider.force_flush()
    return spans.get_finished_spans()


def server_spans(provider: TracerProvider, spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in finished(provider, spans) if span.kind == SpanKind.SERVER]


def everything_said(span: ReadableSpan) -> str:
    """The span's name, attributes and events as one text, to look for what must not be there."""
    said = {
        "name": span.name,
        "attributes": dict(span.attributes or {}),
        "events": [(event.name, dict(event.attributes or {})) for event in span.events],
    }
    return json.dumps(said, default=str)


def status_code(span: ReadableSpan) -> object:
    attributes = span.attributes or {}
    return attributes.get("http.status_code", attributes.get("http.response.status_code"))


# --- switched off -----------------------------------------------------------------------------


def test_tracing_off_builds_no_provider_and_leaves_the_app_unwrapped(tmp_path: Path) -> None:
    app = Starlette(routes=[])
    middleware_before = list(app.user_middleware)

    assert configure_tracing(bare_settings(tmp_path, start_otel=False)) is None
    assert traced(app, None) is app
    assert app.user_middleware == middleware_before


@pytest.mark.slow
def test_tracing_off_never_loads_opentelemetry(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from gateway.settings import Settings\n"
        "from gateway.tracing import configure_tracing, traced\n"
        "from starlette.applications import Starlette\n"
        f"settings = Settings(data_dir={str(tmp_path)!r}, database_url='sqlite://', "
        "clickhouse_url='http://127.0.0.1:1', secret_key='k')\n"
        "assert traced(Starlette(), configure_tracing(settings)) is not None\n"
        "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )

    assert loaded.stdout.strip() == "[]"


# --- the gateway's requests -------------------------------------------------------------------


@pytest.fixture
def traced_client(settings: Settings, provider: TracerProvider) -> Iterator[TestClient]:
    app = traced(create_app(replace(settings, start_otel=True), run_worker=False), provider)
    with TestClient(app) as client:
        yield client


def test_a_request_is_one_server_span_named_by_its_route_template(
    traced_client: TestClient, provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    response = traced_client.get(f"/dashboard-l/embedded/templates/email/{TEMPLATE_ID}?token={SECRET}")

    (span,) = server_spans(provider, spans)
    assert span.name == "GET /dashboard-l/embedded/templates/email/{id}"
    assert (span.attributes or {})["http.route"] == "/dashboard-l/embedded/templates/email/{id}"
    assert status_code(span) == response.status_code
    assert TEMPLATE_ID not in span.name


def test_a_token_in_the_query_string_never_reaches_a_span(
    traced_client: TestClient, provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    traced_client.get(f"/dashboard-l/embedded/deliveries/v2?token={SECRET}&workspaceId=ws-9")
    traced_client.get(f"/api/admin/segments/?apiKey={SECRET}&code={SECRET}&workspaceId=ws-9")

    recorded = finished(provider, spans)
    assert len(recorded) == 2
    for span in recorded:
        said = everything_said(span)
        assert SECRET not in said
        assert "ws-9" in said, "the rest of the query is kept for debugging"


def test_an_unrouted_request_is_named_by_its_method_alone(
    traced_client: TestClient, provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    response = traced_client.get(f"/no/such/{SECRET}")

    (span,) = server_spans(provider, spans)
    assert (span.name, status_code(span), response.status_code) == ("GET", 404, 404)
    assert "http.route" not in (span.attributes or {})


def test_spans_are_named_by_template_under_an_api_prefix(
    settings: Settings, provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    app = create_app(replace(settings, start_otel=True, api_prefix="/engage"), run_worker=False)
    with TestClient(traced(app, provider)) as client:
        assert client.get("/engage/api/").status_code == 200

    (span,) = server_spans(provider, spans)
    assert span.name == "GET /api/"


def test_a_crashing_handler_is_a_500_span_in_error_named_by_its_route(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    async def fail(request: Request) -> Response:
        raise RuntimeError("provider unreachable")

    app = traced(Starlette(routes=[Route("/fail/{attempt}", fail)]), provider)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get(f"/fail/1?token={SECRET}").status_code == 500

    (span,) = server_spans(provider, spans)
    assert (span.name, status_code(span)) == ("GET /fail/{attempt}", 500)
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert SECRET not in everything_said(span)


def test_tracing_an_app_twice_swaps_the_provider_instead_of_nesting_spans(
    tmp_path: Path, provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    async def hello(request: Request) -> Response:
        return Response("hi")

    first = InMemorySpanExporter()
    earlier = TracerProvider()
    earlier.add_span_processor(SimpleSpanProcessor(first))
    app = traced(traced(Starlette(routes=[Route("/hello/{name}", hello)]), earlier), provider)
    with TestClient(app) as client:
        client.get("/hello/ada")

    assert [span.name for span in finished(provider, spans)] == ["GET /hello/{name}"]
    assert first.get_finished_spans() == ()
    earlier.shutdown()


def test_query_attributes_of_the_stable_conventions_are_redacted_too(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    # OTEL_SEMCONV_STABILITY_OPT_IN=http writes url.query; the default writes http.url.
    tracer = provider.get_tracer("test")
    query = f"token={SECRET}&limit=5"
    with tracer.start_as_current_span(
        "GET",
        attributes={
            "url.path": "/dashboard-l/embedded/segments",
            "url.query": query,
            "http.url": f"http://testserver/dashboard-l/embedded/segments?{query}",
        },
    ) as span:
        redact_span_query(span, {"type": "http", "query_string": query.encode()})

    (recorded,) = finished(provider, spans)
    attributes = dict(recorded.attributes or {})
    redacted = "token=%5Bredacted%5D&limit=5"
    assert attributes["url.query"] == redacted
    assert attributes["http.url"] == f"http://testserver/dashboard-l/embedded/segments?{redacted}"
    assert attributes["url.path"] == "/dashboard-l/embedded/segments"


# --- resource ---------------------------------------------------------------------------------


def test_the_service_is_named_feedgate_api_or_worker_by_default(tmp_path: Path) -> None:
    on = bare_settings(tmp_path, start_otel=True)
    api, worker = configure_tracing(on), configure_tracing(on, service_name=WORKER_SERVICE_NAME)
    assert api is not None and worker is not None

    assert api.resource.attributes["service.name"] == API_SERVICE_NAME
    assert worker.resource.attributes["service.name"] == "feedgate-worker"
    api.shutdown()
    worker.shutdown()


def test_otel_service_name_overrides_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "engage-gateway-eu")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")

    built = configure_tracing(bare_settings(tmp_path, start_otel=True))
    assert built is not None

    assert built.resource.attributes["service.name"] == "engage-gateway-eu"
    assert built.resource.attributes["deployment.environment"] == "staging"
    built.shutdown()


# --- worker periods ---------------------------------------------------------------------------


@dataclass
class CountingTask:
    name: str
    fail: bool = False
    runs: int = 0

    def run_once(self) -> None:
        self.runs += 1
        if self.fail:
            raise RuntimeError("provider unreachable")


def test_each_worker_period_is_a_span_named_by_its_task(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    compute, broadcasts = CountingTask("compute-properties"), CountingTask("broadcasts")
    tasks: list[tuple[PeriodicTask, float]] = [(compute, 10.0), (broadcasts, 0.5)]

    traced_list = traced_tasks(tasks, provider)
    for task, _ in traced_list:
        task.run_once()
    traced_list[0][0].run_once()

    assert [(task.name, period) for task, period in traced_list] == [
        ("compute-properties", 10.0),
        ("broadcasts", 0.5),
    ]
    assert (compute.runs, broadcasts.runs) == (2, 1)
    assert [span.name for span in finished(provider, spans)] == [
        "worker compute-properties",
        "worker broadcasts",
        "worker compute-properties",
    ]


def test_a_failing_period_ends_its_span_in_error_and_the_worker_still_logs_it(
    provider: TracerProvider, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    ((task, _),) = traced_tasks([(CountingTask("journeys", fail=True), 0.5)], provider)

    run_isolated(task)

    (span,) = finished(provider, spans)
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert "worker task journeys failed" in caplog.text


def test_untraced_worker_tasks_are_left_as_they_are() -> None:
    task = CountingTask("broadcasts")

    assert traced_tasks([(task, 0.5)], None) == [(task, 0.5)]


# --- the OTLP exporter on the wire ------------------------------------------------------------


@dataclass
class Collector:
    """What a tiny OTLP/HTTP receiver was sent."""

    content_types: list[str]
    bodies: list[bytes]


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    received = Collector([], [])

    async def receive_traces(request: Request) -> Response:
        received.content_types.append(request.headers.get("content-type", ""))
        received.bodies.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    server = ThreadedServer(Starlette(routes=[Route("/v1/traces", receive_traces, methods=["POST"])]))
    server.start()
    yield received, server.url
    server.stop()


def test_spans_are_posted_as_otlp_protobuf_to_the_configured_endpoint(
    tmp_path: Path, collector: tuple[Collector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    received, url = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    built = configure_tracing(bare_settings(tmp_path, start_otel=True))
    assert built is not None

    with built.get_tracer("test").start_as_current_span("worker broadcasts"):
        pass
    assert built.force_flush()
    built.shutdown()

    assert received.content_types == ["application/x-protobuf"]
    (body,) = received.bodies
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    names = [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert (service, names) == (API_SERVICE_NAME, ["worker broadcasts"])
