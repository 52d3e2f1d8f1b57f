"""The event store behaves the same over chdb:// and http:// (the chdb HTTP shim): embedded inserts and
`select_json` take chdb's own path, so each test holds both paths to one expected result."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from engine.errors import Unavailable
from engine.storage import EventStore
from engine.storage.event_schema import MIGRATIONS
from tests.support.net import free_port

EVENT_COLUMNS = ["message_raw", "workspace_id", "message_id", "processing_time"]
EVENT_TYPES = ["String", "String", "String", "DateTime64(3, 'UTC')"]


def _event(workspace_id: str, message_id: str, **message: object) -> list[object]:
    raw = {"messageId": message_id, **message}
    return [json.dumps(raw), workspace_id, message_id, datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)]


def test_open_creates_the_schema_once(event_store: EventStore) -> None:
    tables = {
        row[0]
        for row in event_store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    assert {"user_events_v2", "feedgate_migrations"} <= tables
    assert event_store.migrate() == 0
    assert event_store.query("SELECT count() FROM feedgate_migrations FINAL") == [(len(MIGRATIONS),)]


def test_derived_columns_follow_dittofeed(event_store: EventStore) -> None:
    event_store.insert(
        "user_events_v2",
        [
            _event(
                "w1",
                "m1",
                type="identify",
                userId="u1",
                traits={"email": "a@b.c"},
                timestamp="2025-12-31T23:59:58.250Z",
                context={"hidden": True},
            ),
            _event(
                "w1",
                "m2",
                type="track",
                anonymousId="anon-1",
                event="ORDER_PLACED",
                properties={"total": 42},
                timestamp="2026-01-01T00:00:00Z",
            ),
        ],
        EVENT_COLUMNS,
        EVENT_TYPES,
    )
    rows = event_store.query(
        "SELECT message_id, event_type, event, user_id, anonymous_id, user_or_anonymous_id, properties,"
        " hidden, event_time FROM user_events_v2 ORDER BY message_id"
    )
    identify, track = rows
    assert identify[:8] == ("m1", "identify", "", "u1", "", "u1", '{"email":"a@b.c"}', True)
    assert track[:8] == ("m2", "track", "ORDER_PLACED", "", "anon-1", "anon-1", '{"total":42}', False)
    assert identify[8].replace(tzinfo=UTC) == datetime(2025, 12, 31, 23, 59, 58, 250000, tzinfo=UTC)


def test_parameters_are_bound_not_pasted(event_store: EventStore) -> None:
    event_store.insert(
        "user_events_v2",
        [_event("w1", "m1", type="track", userId="u1", event="E")],
        EVENT_COLUMNS,
        EVENT_TYPES,
    )
    hostile = "w1' OR 1=1 --"
    count_sql = "SELECT count() FROM user_events_v2 WHERE workspace_id = {workspace_id:String}"
    assert event_store.query(count_sql, {"workspace_id": hostile}) == [(0,)]
    assert event_store.query(count_sql, {"workspace_id": "w1"}) == [(1,)]


def test_batches_insert_every_row(event_store: EventStore) -> None:
    rows = [_event("w2", f"m{i}", type="track", userId=f"u{i % 7}", event="E") for i in range(5000)]
    event_store.insert("user_events_v2", rows, EVENT_COLUMNS, EVENT_TYPES)
    assert event_store.query(
        "SELECT count(), uniqExact(user_id) FROM user_events_v2 WHERE workspace_id = {w:String}", {"w": "w2"}
    ) == [(5000, 7)]


def test_databases_are_isolated(event_store: EventStore, events_url: str) -> None:
    other = EventStore.open(events_url, event_store.database + "_other")
    try:
        other.insert(
            "user_events_v2",
            [_event("w1", "m1", type="track", userId="u1", event="E")],
            EVENT_COLUMNS,
            EVENT_TYPES,
        )
        assert event_store.query("SELECT count() FROM user_events_v2") == [(0,)]
    finally:
        other.command(f"DROP DATABASE `{other.database}`")
        other.close()


def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        EventStore.open(f"http://127.0.0.1:{free_port()}", "feedgate")


def test_database_name_must_be_an_identifier(events_url: str) -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        EventStore.open(events_url, "x`; DROP DATABASE y")


def test_inserted_values_read_back_the_same_over_both_paths(event_store: EventStore) -> None:
    """Embedded inserts skip clickhouse-connect; what they store must be what it would have stored."""
    event_store.command(
        "CREATE TABLE kinds (s String, t DateTime64(3, 'UTC'), tokyo DateTime64(3, 'Asia/Tokyo'),"
        " naive DateTime64(3, 'UTC'), n Nullable(String), b Bool, e Enum8('a' = 1, 'b' = 2),"
        " arr Array(String), u UUID, i Int64, f Float64) ENGINE = MergeTree ORDER BY i"
    )
    columns = ["s", "t", "tokyo", "naive", "n", "b", "e", "arr", "u", "i", "f"]
    types = [
        "String",
        "DateTime64(3, 'UTC')",
        "DateTime64(3, 'Asia/Tokyo')",
        "DateTime64(3, 'UTC')",
        "Nullable(String)",
        "Bool",
        "Enum8('a' = 1, 'b' = 2)",
        "Array(String)",
        "UUID",
        "Int64",
        "Float64",
    ]
    instant = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-5)))
    unique = uuid.UUID("6e9ed89b-6b09-4b46-90ca-d5b115a5f087")
    text = "a'b\\c\t\n\x00\"é😀 {x:String}"
    event_store.insert(
        "kinds",
        [
            [
                text,
                instant,
                instant,
                datetime(2026, 1, 2, 3, 4, 5, 678000),
                None,
                True,
                "b",
                ["x", "y'"],
                unique,
                -(2**62),
                1.5,
            ],
            ["", instant, instant, instant.replace(tzinfo=None), "n", False, "a", [], unique, 2**62, -0.25],
        ],
        columns,
        types,
    )
    first, second = event_store.query("SELECT * FROM kinds ORDER BY i")
    utc = datetime(2026, 1, 2, 8, 4, 5, 678000)
    assert first[:2] == (text, utc) and first[3:] == (
        datetime(2026, 1, 2, 3, 4, 5, 678000),
        None,
        True,
        "b",
        ["x", "y'"],
        unique,
        -(2**62),
        1.5,
    )
    assert first[2].astimezone(UTC).replace(tzinfo=None) == utc
    assert second[4:] == ("n", False, "a", [], unique, 2**62, -0.25)


def test_select_json_binds_parameters_and_returns_json_values(event_store: EventStore) -> None:
    hostile = ["o'neil", "back\\slash", "new\nline", "tab\t", "[']", "ünï😀"]
    event_store.insert(
        "user_events_v2",
        [_event("w1", m, type="track", userId="u1", event="E") for m in [*hostile, "other"]],
        EVENT_COLUMNS,
        EVENT_TYPES,
    )
    rows = event_store.select_json(
        "SELECT message_id, toString(event_type), hidden FROM user_events_v2"
        " WHERE workspace_id = {w:String} AND message_id IN {ids:Array(String)} ORDER BY message_id",
        {"w": "w1", "ids": hostile},
    )
    assert rows == [[m, "track", False] for m in sorted(hostile)]
    assert event_store.select_json("SELECT 1 WHERE 0") == []


def test_select_json_binds_datetimes_to_the_millisecond_in_utc(event_store: EventStore) -> None:
    sql = "SELECT toString({at:DateTime64(3, 'UTC')})"
    moment = datetime(2026, 11, 23, 18, 21, 19, 492617, tzinfo=UTC)
    in_paris = moment.astimezone(timezone(timedelta(hours=1)))
    expected = [["2026-11-23 18:21:19.492"]]
    assert event_store.select_json(sql, {"at": moment}) == expected
    assert event_store.select_json(sql, {"at": in_paris}) == expected
    assert event_store.select_json(sql, {"at": moment.replace(tzinfo=None)}) == expected
    assert [list(row) for row in event_store.query(sql, {"at": in_paris})] == expected


def test_a_refused_insert_is_a_clickhouse_error_not_unavailable(event_store: EventStore) -> None:
    with pytest.raises(DatabaseError):
        event_store.insert("no_such_table", [["x"]], ["s"], ["String"])
    with pytest.raises(DatabaseError):
        event_store.insert("user_events_v2", [["x", "w", "m", "not a time"]], EVENT_COLUMNS, ["String"] * 4)
    assert event_store.query("SELECT count() FROM user_events_v2") == [(0,)]
    # The connection that failed is usable again.
    event_store.insert("user_events_v2", [_event("w1", "m1")], EVENT_COLUMNS, EVENT_TYPES)
    assert event_store.query("SELECT count() FROM user_events_v2") == [(1,)]
