"""The event store: ClickHouse through clickhouse-connect, embedded (``chdb://path``) or a server
(``http(s)://host:8123``), behind one small API.

It owns the connection, the schema migrations of `event_schema`, batched inserts with declared column
types (no DESCRIBE round trip per insert) and parameterised queries (``{name:Type}`` placeholders bound
server-side, never pasted into SQL). A store that cannot be reached surfaces as `Unavailable`;
a statement the store rejects stays a ClickHouse error (a bug of ours, not the client's).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import OperationalError

from engine.errors import Unavailable
from engine.storage.event_schema import MIGRATIONS

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# chdb allows one engine per process; every EventStore on the same path shares it, and opening it
# concurrently from two threads races inside chdb, so openings are serialised.
_CHDB_OPEN_LOCK = threading.Lock()


class EventStore:
    """A ClickHouse database holding feedgate's events; safe to share between threads."""

    def __init__(self, client: Any, database: str, *, embedded: bool) -> None:
        self._client = client
        self.database = database
        self.embedded = embedded

    @classmethod
    def open(
        cls, url: str, database: str, *, user: str | None = None, password: str | None = None
    ) -> EventStore:
        """Connect to `url`, create `database` if needed and bring its schema up to date."""
        if not _IDENTIFIER.match(database):
            raise ValueError(f"ClickHouse database name {database!r} is not a plain identifier")
        with _translate_errors():
            client = _connect(url, user=user, password=password)
            client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            client.database = database
        store = cls(client, database, embedded=url.startswith("chdb://"))
        store.migrate()
        return store

    def migrate(self) -> int:
        """Apply the schema migrations this database has not seen; return how many ran."""
        with _translate_errors():
            self._client.command(
                "CREATE TABLE IF NOT EXISTS feedgate_migrations (version UInt32, applied_at DateTime64(3) "
                "DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
            )
            done = {
                row[0] for row in self._client.query("SELECT version FROM feedgate_migrations").result_rows
            }
            applied = 0
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                for statement in statements:
                    self._client.command(statement.replace("{db}", f"`{self.database}`"))
                self._client.insert("feedgate_migrations", [[version]], column_names=["version"])
                applied += 1
            return applied

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        types: Sequence[str],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert `rows` into `table` as one batch; `types` are the ClickHouse types of `columns`."""
        if not rows:
            return
        with _translate_errors():
            self._client.insert(
                _identifier(table),
                rows,
                column_names=list(columns),
                column_type_names=list(types),
                settings=dict(settings or {}),
            )

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a SELECT with server-side bound ``{name:Type}`` parameters and return its rows."""
        with _translate_errors():
            result = self._client.query(sql, parameters=dict(parameters or {}))
            return [tuple(row) for row in result.result_rows]

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, DELETE, OPTIMIZE)."""
        with _translate_errors():
            self._client.command(sql, parameters=dict(parameters or {}))

    def ping(self) -> bool:
        """Return True when the store answers a trivial query."""
        try:
            return self.query("SELECT 1") == [(1,)]
        except Unavailable:
            return False

    def close(self) -> None:
        self._client.close()


def _connect(url: str, *, user: str | None, password: str | None) -> Any:
    if url.startswith("chdb://"):
        with _CHDB_OPEN_LOCK:
            return clickhouse_connect.get_client(dsn=url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported ClickHouse URL scheme {parts.scheme!r}")
    return clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        interface=parts.scheme,
        username=unquote(parts.username) if parts.username else (user or "default"),
        password=unquote(parts.password) if parts.password else (password or ""),
        # Without a session id one client may run queries from many threads at once.
        autogenerate_session_id=False,
        connect_timeout=10,
        send_receive_timeout=300,
    )


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"table name {name!r} is not a plain identifier")
    return name


@contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        raise Unavailable(f"event store unreachable: {error}") from error
    except OSError as error:
        raise Unavailable(f"event store unreachable: {error}") from error
