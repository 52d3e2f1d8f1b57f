"""The `feedgate` command, run as a real process the way an operator runs it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import inspect

from engine import __version__
from engine.storage import make_engine
from tests.support.net import free_port
from tests.support.processes import FEEDGATE, feedgate_env, running_feedgate, wait_for

pytestmark = pytest.mark.slow


def test_demo_serves_the_api_embedded(tmp_path: Path) -> None:
    port = free_port()
    with running_feedgate(["demo", "--port", str(port)], feedgate_env(tmp_path)) as process:
        response = wait_for(f"http://127.0.0.1:{port}/api/", process)
        assert response.json() == {"version": __version__}
        assert httpx.get(f"http://127.0.0.1:{port}/api/readyz").json() == {"sql": True, "events": True}
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells the truth.
        assert process.wait(timeout=30) == -signal.SIGTERM
        assert process.stdout is not None
        assert "Application shutdown complete." in process.stdout.read()
    assert (tmp_path / "data" / "feedgate.db").exists()
    assert (tmp_path / "data" / "chdb").is_dir()


def test_serve_on_postgres_and_clickhouse_http(
    tmp_path: Path, postgres_url: str, clickhouse_http_url: str, clickhouse_database: str
) -> None:
    port = free_port()
    env = feedgate_env(
        tmp_path,
        DATABASE_URL=postgres_url,
        CLICKHOUSE_URL=clickhouse_http_url,
        CLICKHOUSE_DATABASE=clickhouse_database,
    )
    with running_feedgate(["serve", "--port", str(port)], env) as process:
        assert wait_for(f"http://127.0.0.1:{port}/api/readyz", process).json() == {
            "sql": True,
            "events": True,
        }
    sql_engine = make_engine(postgres_url)
    assert {"workspaces", "admin_api_keys", "alembic_version"} <= set(inspect(sql_engine).get_table_names())
    sql_engine.dispose()


def test_serve_with_bootstrap_makes_the_workspace_once(tmp_path: Path) -> None:
    env = feedgate_env(tmp_path, BOOTSTRAP="true", WORKSPACE_NAME="Acme")
    outputs = []
    for _ in range(2):
        port = free_port()
        with running_feedgate(["serve", "--port", str(port)], env) as process:
            wait_for(f"http://127.0.0.1:{port}/api/readyz", process)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            assert process.stdout is not None
            outputs.append(process.stdout.read())

    assert "(created 'Acme')" in outputs[0]
    assert "admin API key:" in outputs[0]
    assert "('Acme' exists already; nothing created)" in outputs[1]
    assert "admin API key:" not in outputs[1]
    sql_engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'feedgate.db'}")
    with sql_engine.connect() as connection:
        names = connection.exec_driver_sql("SELECT name, type, status FROM workspaces").all()
    sql_engine.dispose()
    assert [tuple(row) for row in names] == [("Acme", "Root", "Active")]


def test_migrate_is_idempotent(tmp_path: Path, clickhouse_http_url: str, clickhouse_database: str) -> None:
    env = feedgate_env(tmp_path, CLICKHOUSE_URL=clickhouse_http_url, CLICKHOUSE_DATABASE=clickhouse_database)
    for _ in range(2):
        result = subprocess.run([FEEDGATE, "migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


def test_worker_runs_against_a_clickhouse_server_until_stopped(
    tmp_path: Path, clickhouse_http_url: str, clickhouse_database: str
) -> None:
    env = feedgate_env(
        tmp_path,
        CLICKHOUSE_URL=clickhouse_http_url,
        CLICKHOUSE_DATABASE=clickhouse_database,
        COMPUTE_PROPERTIES_INTERVAL="100",
    )
    with running_feedgate(["worker"], env) as process:
        deadline = time.monotonic() + 60
        output = ""
        assert process.stdout is not None
        while "worker started" not in output and time.monotonic() < deadline:
            output += process.stdout.readline()
        assert "worker started" in output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_worker_refuses_embedded_clickhouse(tmp_path: Path) -> None:
    result = subprocess.run(
        [FEEDGATE, "worker"], env=feedgate_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "CLICKHOUSE_URL" in result.stderr


def test_configuration_errors_name_the_variable(tmp_path: Path) -> None:
    env = feedgate_env(tmp_path, AUTH_MODE="multi-tenant")
    result = subprocess.run([FEEDGATE, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SECRET_KEY must be set" in result.stderr
