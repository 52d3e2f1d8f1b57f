"""A backfill file: one Segment message with its type per line, every line checked before any is
written, and the rows the ingest API would store, a chunk at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.errors import InvalidInput
from engine.event_import import MAX_REPORTED_PROBLEMS, count_import_events, read_import_rows
from engine.events import build_rows

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# As Dittofeed stores them in message_raw.
TRACK: dict[str, Any] = {
    "type": "track",
    "event": "ORDER_PLACED",
    "userId": "ann",
    "messageId": "m-1",
    "timestamp": "2025-03-01T10:00:00.000Z",
    "properties": {"total": 12.5},
}
IDENTIFY: dict[str, Any] = {
    "type": "identify",
    "userId": "ann",
    "messageId": "m-2",
    "traits": {"plan": "pro"},
}
GROUP: dict[str, Any] = {"type": "group", "userId": "ann", "messageId": "m-3", "groupId": "acme"}


def lines(*messages: Any) -> list[bytes]:
    return [m if isinstance(m, bytes) else json.dumps(m).encode() + b"\n" for m in messages]


def problem_of(file: list[bytes]) -> str:
    with pytest.raises(InvalidInput) as raised:
        count_import_events(file)
    return raised.value.message


def test_every_message_type_counts_as_one_event_and_blank_lines_are_skipped() -> None:
    assert count_import_events(lines(TRACK, b"\n", IDENTIFY, b"   \n", GROUP)) == 3


def test_each_line_becomes_the_rows_the_ingest_api_stores() -> None:
    [(rows, events)] = list(read_import_rows("ws", lines(TRACK, IDENTIFY, GROUP), NOW, chunk_events=10))

    expected = [
        row
        for message in (TRACK, IDENTIFY, GROUP)
        for row in build_rows("ws", message["type"], {k: v for k, v in message.items() if k != "type"}, NOW)
    ]
    assert events == 3
    assert rows == expected
    # A group call is one event of several rows; the past timestamp is kept.
    assert len(rows) > events
    assert json.loads(rows[0].message_raw)["timestamp"] == "2025-03-01T10:00:00.000Z"


def test_rows_come_in_chunks_of_events() -> None:
    messages = [{**TRACK, "messageId": f"m-{n}"} for n in range(5)]

    chunks = list(read_import_rows("ws", lines(*messages), NOW, chunk_events=2))

    assert [events for _, events in chunks] == [2, 2, 1]
    assert [row.message_id for rows, _ in chunks for row in rows] == [f"m-{n}" for n in range(5)]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"type": "track", "userId": "ann"\n', "line 2 is not JSON"),
        (b'{"type": "track", "event": "A", "userId": "ann", "messageId": NaN}\n', "line 2 is not JSON"),
        (b"[1, 2]\n", "line 2 must be an object"),
        ({**TRACK, "messageId": ""}, "line 2/messageId"),
        ({k: v for k, v in TRACK.items() if k != "userId"}, "line 2 must have required property 'userId'"),
        ({**TRACK, "type": "purchase"}, "line 2/type"),
        ({k: v for k, v in TRACK.items() if k != "type"}, "line 2/type"),
        ({**TRACK, "properties": "big"}, "line 2/properties"),
    ],
)
def test_a_bad_line_is_named_with_its_number_and_field(line: Any, problem: str) -> None:
    assert problem in problem_of(lines(IDENTIFY, line))


def test_problems_are_listed_up_to_a_limit_with_how_many_more() -> None:
    bad = {**TRACK, "messageId": ""}

    message = problem_of(lines(*[bad] * (MAX_REPORTED_PROBLEMS + 3)))

    assert message.startswith(f"{MAX_REPORTED_PROBLEMS + 3} bad line(s), nothing imported: line 1/")
    assert f"line {MAX_REPORTED_PROBLEMS}/" in message
    assert f"line {MAX_REPORTED_PROBLEMS + 1}/" not in message
    assert message.endswith("; and 3 more")
