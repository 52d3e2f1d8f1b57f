"""The event store: ClickHouse embedded (``chdb://path``) or a server (``http(s)://host:8123``), behind one
small API.

It owns the connection, the schema migrations of `event_schema`, batched inserts with declared column
types (no DESCRIBE round trip per insert) and parameterised queries (``{name:Type}`` placeholders bound
server-side, never pasted into SQL). A store that cannot be reached surfaces as `Unavailable`;
a statement the store rejects stays a ClickHouse error (`DatabaseError`, a bug of ours, not the
client's).

Queries go through clickhouse-connect in both modes. Embedded inserts, commands and `select_json` do
not: they run on chdb connection handles of the store's own (chdb allows many handles on the one engine
path). clickhouse-connect's chdb backend encodes each insert to Native in Python, writes it to a
temporary file and has chdb read the file back, all under one lock shared with every query; here the
rows go to chdb as one JSON document (one C-encoded `json` call) over a streaming insert, lookups
come back as JSON lines instead of being decoded into Python types, and statements from several
threads (the compute loop's) run at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import chdb
import clickhouse_connect
from clickhouse_connect.driver.binding import format_bind_value
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from engine.errors import Unavailable
from engine.storage.event_schema import MIGRATIONS

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SETTING_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# chdb allows one engine per process; every EventStore on the same path shares it, and opening it
# concurrently from two threads races inside chdb, so openings are serialised.
_CHDB_OPEN_LOCK = threading.Lock()

# Strings go into the JSON text as UTF-8, exactly as clickhouse-connect would send them.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class EventStore:
    """A ClickHouse database holding feedgate's events; safe to share between threads."""

    def __init__(self, client: Any, database: str, *, embedded: bool, chdb_path: str | None = None) -> None:
        self._client = client
        self.database = database
        self.embedded = embedded
        # The engine directory when embedded (None for a server): one process may open it at a time.
        self.chdb_path = chdb_path
        self._handles = _ChdbHandles(chdb_path, database) if chdb_path is not None else None
        # Called before every query and command: an ingest log's writer sets it, so that what it has
        # acknowledged is in the store before anyone reads (or deletes) there (see `EventWriter.sync`).
        self.read_barrier: Callable[[], None] | None = None

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
        embedded = url.startswith("chdb://")
        chdb_path = _engine_path(client.path) if embedded else None
        store = cls(client, database, embedded=embedded, chdb_path=chdb_path)
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
        """Insert `rows` into `table` as one batch; `types` are the ClickHouse types of `columns`.

        The rows are in the table when this returns (one part, written before the call returns).
        Datetimes with a timezone are stored as that instant; naive ones are read in the column's zone.
        """
        if not rows:
            return
        table = _identifier(table)
        if self._handles is None:
            with _translate_errors():
                self._client.insert(
                    table,
                    rows,
                    column_names=list(columns),
                    column_type_names=list(types),
                    settings=dict(settings or {}),
                )
            return
        names = ", ".join(f"`{_identifier(column)}`" for column in columns)
        # Datetimes go as ISO text with a zone suffix, which only best_effort parsing reads.
        clauses = {"date_time_input_format": "best_effort", **(settings or {})}
        sql = f"INSERT INTO `{table}` ({names}) SETTINGS {_settings_sql(clauses)}"
        payload = _JSON.encode(
            [_json_column([row[i] for row in rows], types[i]) for i in range(len(columns))]
        ).encode()
        with self._handles.connection() as connection:
            try:
                inserter = connection.send_insert(sql, "JSONCompactColumns")
            except RuntimeError as error:
                raise DatabaseError(str(error)) from None
            try:
                inserter.append(payload)
                inserter.finish()
            except RuntimeError as error:
                # No implicit commit: a failed stream is cancelled, so the handle is free again.
                inserter.cancel()
                raise DatabaseError(str(error)) from None

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a SELECT with server-side bound ``{name:Type}`` parameters and return its rows."""
        self._pass_read_barrier()
        with _translate_errors():
            result = self._client.query(sql, parameters=dict(parameters or {}))
            return [tuple(row) for row in result.result_rows]

    def select_json(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, read_own_writes: bool = True
    ) -> list[list[Any]]:
        """Like `query`, but each value comes back as ClickHouse writes it in JSON (strings, numbers,
        lists), with no conversion to Python types: the cheap path for lookups on the write path.

        Without `read_own_writes` it does not wait at the read barrier: for a caller that has waited
        for the rows it reads already (`EventWriter.sync_messages`)."""
        if read_own_writes:
            self._pass_read_barrier()
        if self._handles is None:
            with _translate_errors():
                raw: bytes = self._client.raw_query(
                    sql, parameters=dict(parameters or {}), fmt="JSONCompactEachRow"
                )
        else:
            raw = self._handles.run(sql, parameters, "JSONCompactEachRow")
        return [json.loads(line) for line in raw.splitlines() if line]

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, DELETE, OPTIMIZE, INSERT ... SELECT)."""
        self._pass_read_barrier()
        if self._handles is None:
            with _translate_errors():
                self._client.command(sql, parameters=dict(parameters or {}))
        else:
            # On a handle of its own, as lookups are: clickhouse-connect's chdb client runs one statement
            # at a time, and the compute loop runs several at once.
            self._handles.run(sql, parameters, "TSV")

    def ping(self) -> bool:
        """Return True when the store answers a trivial query."""
        try:
            # Past the read barrier: whether the store answers does not wait for pending writes.
            with _translate_errors():
                return self._client.query("SELECT 1").result_rows == [(1,)]  # type: ignore[no-any-return]
        except Unavailable:
            return False

    def _pass_read_barrier(self) -> None:
        if self.read_barrier is not None:
            self.read_barrier()

    def close(self) -> None:
        if self._handles is not None:
            self._handles.close()
        self._client.close()


class _ChdbHandles:
    """A pool of chdb connection handles on the engine path, each bound to the store's database.

    A handle runs one statement at a time, so each caller borrows its own; the pool grows to the
    number of threads that insert or look up at once (the event writer, the compute loop) and no
    further.
    """

    def __init__(self, path: str, database: str) -> None:
        self._path = path
        self._database = database
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise Unavailable("event store is closed")
            handle = self._idle.pop() if self._idle else None
        if handle is None:
            handle = self._open()
        try:
            yield handle
        finally:
            with self._lock:
                if not self._closed:
                    self._idle.append(handle)
                    handle = None
            if handle is not None:
                handle.close()

    def run(self, sql: str, parameters: Mapping[str, Any] | None, fmt: str) -> bytes:
        """Run one statement on a borrowed handle; its output in `fmt`."""
        params = {name: _bind_value(value) for name, value in (parameters or {}).items()}
        with self.connection() as connection:
            try:
                return bytes(connection.query(sql, fmt, params=params).bytes())
            except RuntimeError as error:
                raise DatabaseError(str(error)) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for handle in idle:
            handle.close()

    def _open(self) -> Any:
        with _CHDB_OPEN_LOCK:
            try:
                handle = chdb.connect(self._path)
            except RuntimeError as error:
                raise Unavailable(f"event store unreachable: {error}") from error
        try:
            handle.query(f"USE `{self._database}`", "TSV")
        except RuntimeError as error:
            handle.close()
            raise DatabaseError(str(error)) from None
        return handle


# clickhouse-connect's escaping of bound strings (backslash before each of these), done by str.translate
# rather than its per-character generator: a lookup binds hundreds of message ids at a time.
_BIND_ESCAPES = str.maketrans({c: "\\" + c for c in ("\\", "'", "`", "\t", "\n")})


def _bind_value(value: Any, top_level: bool = True) -> str:
    """A parameter value as clickhouse-connect's `format_bind_value` writes it, strings and lists fast."""
    if isinstance(value, str):
        escaped = value.translate(_BIND_ESCAPES)
        return escaped if top_level else f"'{escaped}'"
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        inner = ", ".join(_bind_value(item, top_level=False) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, datetime) and top_level:
        # format_bind_value drops the fraction of a second, which a DateTime64 parameter needs (as
        # clickhouse-connect's own query binding keeps it); a naive value is UTC.
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(format_bind_value(value, UTC, top_level))


def _engine_path(path: str) -> str:
    """The engine path as clickhouse-connect opened it: chdb refuses a second spelling of the path."""
    if path.startswith((":memory:", "file:")):
        return path
    return os.path.realpath(path)


def _json_column(values: list[Any], column_type: str) -> list[Any]:
    """One column of an insert as JSON values ClickHouse parses into `column_type`."""
    if column_type.startswith(("DateTime", "Nullable(DateTime")):
        # A batch's rows share a few datetime objects (receipt and processing times): format each once.
        texts: dict[datetime, str] = {}
        out: list[Any] = []
        for value in values:
            if isinstance(value, datetime):
                text = texts.get(value)
                if text is None:
                    text = texts[value] = _datetime_text(value)
                out.append(text)
            else:
                out.append(_json_value(value))
        return out
    if all(type(value) is str for value in values):
        return values
    return [_json_value(value) for value in values]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    # UUID, Decimal, enum members, IP addresses: their text is what ClickHouse parses.
    return str(value)


def _datetime_text(value: datetime) -> str:
    if value.tzinfo is None:
        return value.isoformat(sep=" ")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") + "Z"


def _settings_sql(settings: Mapping[str, Any]) -> str:
    parts = []
    for name, value in settings.items():
        text = str(int(value)) if isinstance(value, bool) else str(value)
        if not _IDENTIFIER.match(name) or not _SETTING_VALUE.match(text):
            raise ValueError(f"insert setting {name}={value!r} is not a plain name and value")
        parts.append(f"{name}='{text}'")
    return ", ".join(parts)


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
    except (OperationalError, OSError) as error:
        # The driver's message names the server and carries the query's parameters (other tenants'
        # workspace and message ids, in a coalesced batch): it goes to the log, never to a client.
        logger.warning("event store unreachable: %s", error)
        raise Unavailable("event store unreachable") from error
