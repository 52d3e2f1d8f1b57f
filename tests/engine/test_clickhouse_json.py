"""A body stored verbatim is read the same way by our parser and by ClickHouse, or refused.

The parity test stores accepted bodies through the real event store (chdb and HTTP) and checks that the
columns ClickHouse derives equal the deduplication key we computed from the Python parse.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engine.clickhouse_json import MAX_DEPTH, parse_for_clickhouse
from engine.errors import InvalidInput
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, verbatim_row
from engine.storage import EventStore

REFUSED = [
    b"",
    b"{not json",
    b'{"type":"track"}garbage',
    b'{"type":"bogus","type":"track"}',  # ClickHouse reads the first, Python the last
    b'{"type":"track","x":NaN}',
    b'{"type":"track","x":-Infinity}',
    b'{"type":"track","x":1e999}',
    b'{"type":"track","x":"\\ud800"}',
    b'{"type":"track","\\udfff":1}',
    b'{"type":"track","x":"\t"}',
    b'{"type":"track","x":"\xff"}',
    b"\xef\xbb\xbf{}",
    b'{"type":"track","x":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
    b'{"type":"track","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
]

ACCEPTED = [
    b'{"type":"track","event":"E","userId":"u","messageId":"m1"}',
    b' \n{"type" : "identify", "anonymousId":"a", "messageId":"m2"}\n',
    b'{"type":"track","event":"\\u00e9v\\ud83d\\ude00","userId":"\\u0000u","messageId":"m3"}',
    b'{"type":"page","userId":null,"anonymousId":"anon","event":null,"messageId":"m4"}',
    b'{"type":"alias","x":123456789012345678901234567890,"y":1.7976931348623157e308,"messageId":"m5"}',
    b'{"ty\\u0070e":"screen","userId":"","anonymousId":"a5","messageId":"m6"}',
    b'{"type":"group","x":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b',"messageId":"m7"}',
    '{"type":"track","event":"Bestellung ✓","userId":"ü","messageId":"m8"}'.encode(),
]


@pytest.mark.parametrize("raw", REFUSED)
def test_what_clickhouse_would_read_differently_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_for_clickhouse(raw)
    assert caught.value.field == "body"


@pytest.mark.parametrize("raw", ACCEPTED)
def test_the_text_is_the_body_exactly(raw: bytes) -> None:
    text, value = parse_for_clickhouse(raw)
    assert text.encode() == raw
    assert value == json.loads(raw)


def test_clickhouse_derives_the_key_we_computed(event_store: EventStore) -> None:
    now = datetime.now(UTC)
    rows = []
    for raw in ACCEPTED:
        text, message = parse_for_clickhouse(raw)
        rows.append(verbatim_row("w", text, message, now))
    event_store.insert("user_events_v2", [row.values(now) for row in rows], EVENT_COLUMNS, EVENT_COLUMN_TYPES)
    stored = event_store.query(
        "SELECT workspace_id, message_id, toString(event_type), event, user_or_anonymous_id, message_raw"
        " FROM user_events_v2",
        {},
    )
    assert {tuple(row[:5]) for row in stored} == {row.key for row in rows}
    assert {row[5] for row in stored} == {raw.decode() for raw in ACCEPTED}
