"""Prometheus metrics: requests by route template (never the raw path), latency, accepted events,
sends by provider and result, and compute lag; the page carries no credential."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from engine.storage.models import WorkspaceType
from gateway.app import create_app
from gateway.metrics import Metrics, MetricsMiddleware, metrics_routes
from gateway.operator import create_workspace_with_key
from gateway.settings import Settings


async def show_user(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["user_id"]})


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(process_collectors=False)


@pytest.fixture
def tiny(metrics: Metrics) -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/users/{user_id}", show_user, methods=["GET"], name="users:show"),
            *metrics_routes(metrics),
        ],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
    )
    with TestClient(app) as client:
        yield client


def requests_of(metrics: Metrics, route: str, method: str, status: str) -> float | None:
    labels = {"route": route, "method": method, "status": status}
    return metrics.registry.get_sample_value("feedgate_http_requests_total", labels)


def test_requests_are_counted_by_route_template_not_by_path(tiny: TestClient, metrics: Metrics) -> None:
    tiny.get("/users/alice")
    tiny.get("/users/bob")

    assert requests_of(metrics, "/users/{user_id}", "GET", "200") == 2
    page = tiny.get("/metrics").text
    assert "alice" not in page and "bob" not in page


def test_unmatched_paths_share_one_series(tiny: TestClient, metrics: Metrics) -> None:
    for path in ("/wp-login.php", "/.env", "/admin/../etc/passwd"):
        tiny.get(path)

    assert requests_of(metrics, "<unmatched>", "GET", "404") == 3


def test_unknown_methods_share_one_label(tiny: TestClient, metrics: Metrics) -> None:
    tiny.request("PROPFIND", "/users/alice")

    assert requests_of(metrics, "/users/{user_id}", "OTHER", "405") == 1


def test_latency_is_observed_per_route_and_method(tiny: TestClient, metrics: Metrics) -> None:
    tiny.get("/users/alice")

    labels = {"route": "/users/{user_id}", "method": "GET"}
    assert metrics.registry.get_sample_value("feedgate_http_request_duration_seconds_count", labels) == 1


def test_the_page_is_prometheus_text_without_credentials(tiny: TestClient) -> None:
    tiny.get("/users/alice?token=tok-SECRET", headers={"authorization": "Bearer key-SECRET"})

    response = tiny.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE feedgate_http_requests_total counter" in response.text
    assert "# TYPE feedgate_sends_total counter" in response.text
    assert "SECRET" not in response.text


def test_sends_are_counted_by_provider_and_result(metrics: Metrics) -> None:
    metrics.record_send("SendGrid", "Success")
    metrics.record_send("SendGrid", "Success")
    metrics.record_send("Twilio", "RetryableError")

    def sends(provider: str, result: str) -> float | None:
        labels = {"provider": provider, "result": result}
        return metrics.registry.get_sample_value("feedgate_sends_total", labels)

    assert (sends("SendGrid", "Success"), sends("Twilio", "RetryableError")) == (2, 1)


def test_compute_lag_is_absent_until_a_pass_completes(metrics: Metrics) -> None:
    metrics.watch_compute(lambda: None)

    assert metrics.registry.get_sample_value("feedgate_compute_lag_seconds") is None


def test_compute_lag_counts_from_the_latest_completed_pass(metrics: Metrics) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    metrics.watch_compute(lambda: hour_ago)
    metrics.watch_compute(lambda: minute_ago)

    lag = metrics.registry.get_sample_value("feedgate_compute_lag_seconds")

    assert lag is not None and 60 <= lag < 3600


def test_process_collectors_are_on_by_default() -> None:
    assert Metrics().registry.get_sample_value("process_open_fds") is not None


def test_metrics_are_not_served_unless_mounted(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def scraped(page: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_the_real_app_counts_ingested_events_and_routes(settings: Settings) -> None:
    with TestClient(create_app(replace(settings, metrics_enabled=True), run_worker=False)) as client:
        with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
            created = create_workspace_with_key(session, "Counted", WorkspaceType.ROOT)
        assert created.write_key is not None
        headers = {"authorization": created.write_key}
        batch = {
            "batch": [
                {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m1"},
                {"type": "identify", "userId": "u1", "messageId": "m2", "traits": {"plan": "pro"}},
            ]
        }
        assert client.post("/api/public/apps/batch", json=batch, headers=headers).status_code == 204
        page = client.get("/metrics").text

    assert scraped(page, "feedgate_events_accepted_total") == 2
    route = {"route": "/api/public/apps/{event_type}", "method": "POST", "status": "204"}
    assert scraped(page, "feedgate_http_requests_total", **route) == 1
    assert created.write_key.split(" ")[-1] not in page
