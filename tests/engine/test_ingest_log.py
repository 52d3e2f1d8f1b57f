"""The ingest log gives back exactly the rows of every whole record, in order, and stops at the first
torn or corrupt one (nothing after it was acknowledged)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import ingest_log
from engine.events import EventRow, build_rows
from engine.ingest_log import IngestLog, read_commits


def read_rows(path: Path) -> list[EventRow]:
    return [row for commit in read_commits(path) for row in commit]


def _rows(*message_ids: str) -> list[EventRow]:
    received = datetime(2026, 11, 23, 20, 1, 2, 345_678, tzinfo=UTC)
    return [
        row
        for message_id in message_ids
        for row in build_rows(
            "w1",
            "track",
            {"messageId": message_id, "userId": "ünï😀", "event": "E", "properties": {"q": "<'\"\\\n>"}},
            received,
        )
    ]


def test_rows_come_back_exactly_as_appended(tmp_path: Path) -> None:
    # Verbatim rows (Segment's webhook) keep the text as received, even a lone surrogate escape.
    verbatim = EventRow(
        "w1", "\x00m\ud800", '{"a":"\\ud800"}', datetime(2026, 1, 1, tzinfo=UTC), ("w1", "\ud800", "", "", "")
    )
    log = IngestLog(tmp_path)
    assert log.append(_rows("m1", "m2")) == 1
    assert log.append([*_rows("m3"), verbatim]) == 2
    log.close()
    [path] = tmp_path.glob("*.log")
    assert read_commits(path) == [_rows("m1", "m2"), [*_rows("m3"), verbatim]]


def test_a_torn_last_record_is_left_out(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    log.append(_rows("m1"))
    log.append(_rows("m2"))
    log.close()
    [path] = tmp_path.glob("*.log")
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])
    assert read_rows(path) == _rows("m1")


def test_a_corrupt_record_ends_the_file(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    log.append(_rows("m1"))
    log.append(_rows("m2"))
    log.append(_rows("m3"))
    log.close()
    [path] = tmp_path.glob("*.log")
    data = bytearray(path.read_bytes())
    second = data.index(b"m2")
    data[second] = ord("x")
    path.write_bytes(bytes(data))
    assert read_rows(path) == _rows("m1")


def test_a_new_log_leaves_the_files_it_found_for_reading_back(tmp_path: Path) -> None:
    first = IngestLog(tmp_path)
    first.append(_rows("m1"))
    first.close()
    second = IngestLog(tmp_path)
    try:
        [earlier] = second.earlier_files
        assert read_rows(earlier) == _rows("m1")
        assert second.append(_rows("m2")) == 1
        assert len(list(tmp_path.glob("*.log"))) == 2
    finally:
        second.close()


def test_files_are_dropped_when_every_commit_in_them_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_log, "ROTATE_ABOVE_BYTES", 1)  # one commit per file
    log = IngestLog(tmp_path)
    sequences = [log.append(_rows(f"m{n}")) for n in range(6)]
    log.mark_stored(sequences[2])
    remaining = sorted(tmp_path.glob("*.log"))
    assert [row.message_id for path in remaining for row in read_rows(path)] == ["m3", "m4", "m5"]
    log.mark_stored(sequences[-1])
    [current] = tmp_path.glob("*.log")
    assert current.stat().st_size == 0
    log.close()
