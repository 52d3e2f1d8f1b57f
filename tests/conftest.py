"""Shared fixtures: real SQL databases (SQLite file, throwaway Postgres), real ClickHouse paths
(chdb in-process and HTTP through the chdb shim), settings, the app and its test client.

`sql_url` and `events_url` are parametrised, so a test that takes both runs on every combination of
{SQLite, Postgres} x {chdb://, http://}. chdb allows one engine path per process, so each test process
(pytest-xdist worker) owns one chdb directory and every test gets its own ClickHouse database in it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from engine.storage import EventStore, make_engine, make_session_factory, upgrade_database
from gateway.app import create_app
from gateway.settings import Settings
from tests.support.clickhouse_http import ChdbHttp, make_app
from tests.support.net import ThreadedServer
from tests.support.postgres import postgres_cluster

_TEMPLATE_DB = "feedgate_template"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The throwaway cluster's maintenance database URL."""
    with postgres_cluster() as url:
        _admin(url, f"CREATE DATABASE {_TEMPLATE_DB}")
        template = make_engine(_with_database(url, _TEMPLATE_DB))
        upgrade_database(template)
        template.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, fully migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "feedgate.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    server: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin(server, f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE_DB}")
    yield _with_database(server, name)
    _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sql_engine(sql_url: str) -> Iterator[Engine]:
    engine = make_engine(sql_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(sql_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(sql_engine)


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This test process's one chdb engine path."""
    return str(tmp_path_factory.mktemp("chdb") / "store")


@pytest.fixture(scope="session")
def clickhouse_http_url(chdb_dir: str) -> Iterator[str]:
    """A ClickHouse HTTP endpoint (the chdb shim) on a loopback port."""
    shim = ChdbHttp(chdb_dir)
    server = ThreadedServer(make_app(shim)).start()
    yield server.url
    server.stop()
    shim.close()


@pytest.fixture(params=["chdb", "http"])
def events_url(request: pytest.FixtureRequest, chdb_dir: str) -> str:
    if request.param == "chdb":
        return f"chdb://{chdb_dir}"
    url: str = request.getfixturevalue("clickhouse_http_url")
    return url


@pytest.fixture
def clickhouse_database() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def event_store(events_url: str, clickhouse_database: str) -> Iterator[EventStore]:
    store = EventStore.open(events_url, clickhouse_database)
    yield store
    store.command(f"DROP DATABASE IF EXISTS `{clickhouse_database}`")
    store.close()


@pytest.fixture
def settings(tmp_path: Path, chdb_dir: str, clickhouse_database: str) -> Iterator[Settings]:
    """Embedded defaults (SQLite file + chdb) in a private data dir and ClickHouse database."""
    yield Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'feedgate.db'}",
        clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_database=clickhouse_database,
        secret_key="test-secret-key",
    )
    # Databases left behind accumulate in this process's one chdb path and slow every later test.
    clickhouse_connect.get_client(dsn=f"chdb://{chdb_dir}").command(
        f"DROP DATABASE IF EXISTS `{clickhouse_database}`"
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_worker=False)) as test_client:
        yield test_client


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _admin(url: str, statement: str) -> None:
    plain = _with_database(url, "postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(statement.encode())
