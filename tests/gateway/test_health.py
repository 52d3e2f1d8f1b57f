"""Health: Dittofeed's `GET /api/` answers `{version}`; readiness checks both stores on every
combination of SQL and ClickHouse."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from engine import __version__
from gateway.app import create_app
from gateway.settings import Settings


def test_version_probe_matches_dittofeed(client: TestClient) -> None:
    response = client.get("/api/")
    assert response.status_code == 200
    assert response.json() == {"version": __version__}


def test_ready_on_every_storage_combination(
    sql_url: str, events_url: str, clickhouse_database: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=sql_url,
        clickhouse_url=events_url,
        clickhouse_database=clickhouse_database,
        secret_key="k",
    )
    with TestClient(create_app(settings, run_worker=False)) as client:
        response = client.get("/api/readyz")
        client.app.state.event_store.command(f"DROP DATABASE `{clickhouse_database}`")  # type: ignore[attr-defined]
    assert (response.status_code, response.json()) == (200, {"sql": True, "events": True})


def test_api_prefix_is_stripped(settings: Settings) -> None:
    prefixed = Settings(**{**settings.__dict__, "api_prefix": "/feedgate"})
    with TestClient(create_app(prefixed, run_worker=False)) as client:
        assert client.get("/feedgate/api/").json() == {"version": __version__}


def test_vendored_htmx_is_served(client: TestClient) -> None:
    response = client.get("/static/htmx.min.js")
    assert response.status_code == 200
    assert b"htmx" in response.content[:2000]


def test_the_bare_host_name_leads_to_the_console(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)

    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"
