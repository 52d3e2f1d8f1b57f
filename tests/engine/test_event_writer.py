"""The event writer stores each (workspace, messageId, type, event, user) once, acknowledges only
stored rows (or, with an ingest log, rows in the log, stored later and read back by the next writer
if need be), and says up to when everything is stored; over chdb:// and http:// alike."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import event_writer, ingest_log
from engine.errors import Unavailable
from engine.event_writer import EventWriter
from engine.events import EventRow, build_rows
from engine.ingest_log import IngestLog
from engine.storage import EventStore


def _track(message_id: str, user: str = "u1", event: str = "E") -> dict[str, object]:
    return {"messageId": message_id, "userId": user, "event": event}


def _rows(workspace_id: str, *messages: dict[str, object], kind: str = "track") -> list[EventRow]:
    now = datetime.now(UTC)
    return [row for message in messages for row in build_rows(workspace_id, kind, message, now)]


def _stored(store: EventStore) -> list[tuple[str, str, str]]:
    rows = store.query(
        "SELECT workspace_id, message_id, event FROM user_events_v2 ORDER BY workspace_id, message_id, event"
    )
    return [(str(w), str(m), str(e)) for w, m, e in rows]


@pytest.fixture
def writer(event_store: EventStore) -> Iterator[EventWriter]:
    writer = EventWriter(event_store)
    yield writer
    writer.close()


def test_a_repeated_key_is_stored_once(writer: EventWriter, event_store: EventStore) -> None:
    assert writer.write(_rows("w1", _track("m1"), _track("m1"), _track("m2"))) == 2
    assert writer.write(_rows("w1", _track("m1"), _track("m3"))) == 1
    # The same messageId is a different key in another workspace or with another event.
    assert writer.write(_rows("w2", _track("m1"))) == 1
    assert writer.write(_rows("w1", _track("m1", event="F"))) == 1
    assert _stored(event_store) == [
        ("w1", "m1", "E"),
        ("w1", "m1", "F"),
        ("w1", "m2", "E"),
        ("w1", "m3", "E"),
        ("w2", "m1", "E"),
    ]


def test_keys_stored_before_the_writer_existed_are_not_stored_again(event_store: EventStore) -> None:
    """The store, not the process's memory, is what a restarted writer deduplicates against."""
    first = EventWriter(event_store)
    first.write(_rows("w1", _track("m1"), _track("m2")))
    first.close()
    second = EventWriter(event_store)
    try:
        assert second.write(_rows("w1", _track("m2"), _track("m3"))) == 1
    finally:
        second.close()
    assert [m for _, m, _ in _stored(event_store)] == ["m1", "m2", "m3"]


def test_hostile_message_ids_deduplicate_exactly(writer: EventWriter, event_store: EventStore) -> None:
    ids = ["o'neil", "back\\slash", "tab\there", "new\nline", 'quote"d', "ünï😀", "\x00nul", "[']"]
    assert writer.write(_rows("w1", *(_track(i) for i in ids))) == len(ids)
    assert writer.write(_rows("w1", *(_track(i) for i in ids))) == 0
    assert sorted(m for _, m, _ in _stored(event_store)) == sorted(ids)


def test_concurrent_writers_store_every_key_once(writer: EventWriter, event_store: EventStore) -> None:
    keys = [f"m{i}" for i in range(60)]
    written: list[int] = []
    lock = threading.Lock()

    def send(offset: int) -> None:
        # Every thread sends every key, in its own order and in requests of a few rows.
        mine = keys[offset:] + keys[:offset]
        for start in range(0, len(mine), 7):
            count = writer.write(_rows("w1", *(_track(k) for k in mine[start : start + 7])))
            with lock:
                written.append(count)

    threads = [threading.Thread(target=send, args=(n * 11,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(written) == len(keys)
    assert sorted(m for _, m, _ in _stored(event_store)) == sorted(keys)


def test_coroutines_wait_for_their_rows_without_holding_threads(
    writer: EventWriter, event_store: EventStore
) -> None:
    """However many requests wait on a flush, none holds a thread: each waiting one joins the batch."""
    threads_before = threading.active_count()

    async def accept_all() -> int:
        waits = [
            asyncio.create_task(writer.accept_async(_rows("w1", _track(f"m{n % 100}")))) for n in range(200)
        ]
        await asyncio.sleep(0)  # every write is queued and waiting now
        threads_while_waiting = threading.active_count()
        await asyncio.gather(*waits)
        return threads_while_waiting

    assert asyncio.run(accept_all()) == threads_before
    assert sorted(m for _, m, _ in _stored(event_store)) == sorted(f"m{n}" for n in range(100))


def test_a_refused_write_raises_in_the_waiting_coroutine(
    writer: EventWriter, event_store: EventStore
) -> None:
    event_store.command("RENAME TABLE user_events_v2 TO user_events_v2_away")
    try:
        with pytest.raises(Unavailable):
            asyncio.run(writer.accept_async(_rows("w1", _track("m1"))))
    finally:
        event_store.command("RENAME TABLE user_events_v2_away TO user_events_v2")
    assert _stored(event_store) == []
    asyncio.run(writer.accept_async(_rows("w1", _track("m1"))))
    asyncio.run(writer.accept_async(_rows("w1", _track("m1"))))
    assert _stored(event_store) == [("w1", "m1", "E")]


def test_a_group_call_stores_its_rows_sharing_one_message_id(
    writer: EventWriter, event_store: EventStore
) -> None:
    message: dict[str, object] = {
        "messageId": "g1",
        "userId": "u1",
        "groupId": "acme",
        "traits": {"plan": "pro"},
    }
    assert writer.write(_rows("w1", message, kind="group")) == 3
    assert writer.write(_rows("w1", message, kind="group")) == 0
    assert [m for _, m, _ in _stored(event_store)] == ["g1", "g1", "g1"]


def test_a_refused_write_is_not_acknowledged_and_can_be_retried(
    writer: EventWriter, event_store: EventStore
) -> None:
    event_store.command("RENAME TABLE user_events_v2 TO user_events_v2_away")
    with pytest.raises(Unavailable):
        writer.write(_rows("w1", _track("m1")))
    event_store.command("RENAME TABLE user_events_v2_away TO user_events_v2")
    assert writer.write(_rows("w1", _track("m1"))) == 1
    assert writer.write(_rows("w1", _track("m1"))) == 0
    assert [m for _, m, _ in _stored(event_store)] == ["m1"]


def test_the_watermark_covers_what_is_stored_and_precedes_what_is_not(
    writer: EventWriter, event_store: EventStore
) -> None:
    writer.write(_rows("w1", _track("m1"), _track("m2")))
    mark = writer.watermark()
    [(latest,)] = event_store.query("SELECT max(processing_time) FROM user_events_v2")
    assert latest.replace(tzinfo=UTC) <= mark
    writer.write(_rows("w1", _track("m3")))
    [(later,)] = event_store.query(
        "SELECT processing_time FROM user_events_v2 WHERE message_id = {m:String}", {"m": "m3"}
    )
    assert later.replace(tzinfo=UTC) > mark


def test_close_writes_what_was_accepted_and_refuses_the_rest(event_store: EventStore) -> None:
    writer = EventWriter(event_store)
    acknowledged: list[str] = []
    refused: list[str] = []

    def send(message_id: str) -> None:
        try:
            writer.write(_rows("w1", _track(message_id)))
            acknowledged.append(message_id)
        except Unavailable:
            refused.append(message_id)

    threads = [threading.Thread(target=send, args=(f"m{n}",)) for n in range(20)]
    for thread in threads:
        thread.start()
    writer.close()  # while some writes may still be queued: those are written before close returns
    for thread in threads:
        thread.join()
    assert len(acknowledged) + len(refused) == 20
    assert sorted(m for _, m, _ in _stored(event_store)) == sorted(acknowledged)
    with pytest.raises(Unavailable):
        writer.write(_rows("w1", _track(str(uuid.uuid4()))))


def test_a_batch_of_keys_just_written_needs_no_lookup(writer: EventWriter, event_store: EventStore) -> None:
    """Keys the writer stored lately are known without asking the store (which is away here)."""
    writer.write(_rows("w1", _track("m1"), _track("m2")))
    event_store.command("RENAME TABLE user_events_v2 TO user_events_v2_away")
    try:
        assert writer.write(_rows("w1", _track("m2"), _track("m1"))) == 0
        with pytest.raises(Unavailable):
            writer.write(_rows("w1", _track("m1"), _track("m3")))
    finally:
        event_store.command("RENAME TABLE user_events_v2_away TO user_events_v2")


# --- with an ingest log ---------------------------------------------------------------------------


@pytest.fixture
def other_store(events_url: str, clickhouse_database: str) -> Iterator[EventStore]:
    """The same database through a store no writer is attached to (so no read barrier)."""
    store = EventStore.open(events_url, clickhouse_database)
    yield store
    store.close()


@pytest.fixture
def logged_writer(event_store: EventStore, tmp_path: Path) -> Iterator[EventWriter]:
    writer = EventWriter(event_store, log=IngestLog(tmp_path))
    yield writer
    writer.close()


def _take_table_away(store: EventStore) -> None:
    store.command("RENAME TABLE user_events_v2 TO user_events_v2_away")


def _bring_table_back(store: EventStore) -> None:
    store.command("RENAME TABLE user_events_v2_away TO user_events_v2")


def test_with_a_log_rows_are_acknowledged_while_the_store_refuses_and_stored_once_it_is_back(
    logged_writer: EventWriter, event_store: EventStore, other_store: EventStore
) -> None:
    _take_table_away(other_store)
    asyncio.run(logged_writer.accept_async(_rows("w1", _track("m1"), _track("m2"))))
    asyncio.run(logged_writer.accept_async(_rows("w1", _track("m2"), _track("m3"))))
    _bring_table_back(other_store)
    # A read through the writer's store waits until what was acknowledged is stored.
    assert [m for _, m, _ in _stored(event_store)] == ["m1", "m2", "m3"]


def test_rows_left_in_the_log_are_stored_by_the_next_writer_and_none_twice(
    event_store: EventStore, other_store: EventStore, tmp_path: Path
) -> None:
    first = EventWriter(event_store, log=IngestLog(tmp_path))
    first.accept(_rows("w1", _track("m1")))
    assert [m for _, m, _ in _stored(event_store)] == ["m1"]
    _take_table_away(other_store)
    first.accept(_rows("w1", _track("m1"), _track("m2")))
    first.close()  # the store still refuses: m2 is only in the log
    _bring_table_back(other_store)
    assert [m for _, m, _ in _stored(other_store)] == ["m1"]

    second = EventWriter(event_store, log=IngestLog(tmp_path))
    try:
        assert [m for _, m, _ in _stored(event_store)] == ["m1", "m2"]
        second.accept(_rows("w1", _track("m3")))
        assert [m for _, m, _ in _stored(event_store)] == ["m1", "m2", "m3"]
    finally:
        second.close()
    # The files the first writer left are gone once stored; only the second writer's remains.
    assert len(list(tmp_path.glob("*.log"))) == 1


def test_the_watermark_covers_rows_accepted_before_it(
    logged_writer: EventWriter, other_store: EventStore
) -> None:
    _take_table_away(other_store)
    asyncio.run(logged_writer.accept_async(_rows("w1", _track("m1"))))
    _bring_table_back(other_store)
    mark = logged_writer.watermark()
    [(latest,)] = other_store.query("SELECT max(processing_time) FROM user_events_v2")
    assert latest.replace(tzinfo=UTC) <= mark


def test_a_delete_waits_for_the_acknowledged_rows_it_should_remove(
    logged_writer: EventWriter, event_store: EventStore, other_store: EventStore
) -> None:
    """A deletion must not run before rows acknowledged earlier land, or they would come back."""
    _take_table_away(other_store)
    asyncio.run(logged_writer.accept_async(_rows("w1", _track("m1", user="gone"), _track("m2"))))
    _bring_table_back(other_store)
    event_store.command(
        "DELETE FROM user_events_v2 WHERE user_or_anonymous_id = {user:String}", {"user": "gone"}
    )
    assert [m for _, m, _ in _stored(other_store)] == ["m2"]


def test_log_files_are_dropped_once_their_rows_are_stored(
    logged_writer: EventWriter, event_store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_log, "ROTATE_ABOVE_BYTES", 2_000)
    monkeypatch.setattr(ingest_log, "EMPTY_ABOVE_BYTES", 2_000)
    for n in range(40):
        asyncio.run(logged_writer.accept_async(_rows("w1", *(_track(f"m{n}-{k}") for k in range(5)))))
    logged_writer.sync()
    assert len(_stored(event_store)) == 200
    [current] = tmp_path.glob("*.log")
    assert current.stat().st_size <= 2_000


def test_what_was_acknowledged_in_order_is_stamped_in_that_order(
    logged_writer: EventWriter, event_store: EventStore, other_store: EventStore
) -> None:
    """Commits queued while the store refuses land in one insert, yet each is stamped later than the
    one before: the newest-first lists and the latest group assignment depend on it."""
    _take_table_away(other_store)
    for n in range(5):
        logged_writer.accept(_rows("w1", _track(f"m{n}")))
    _bring_table_back(other_store)
    rows = event_store.query("SELECT message_id FROM user_events_v2 ORDER BY processing_time, message_id")
    [(distinct,)] = event_store.query("SELECT uniqExact(processing_time) FROM user_events_v2")
    assert [m for (m,) in rows] == [f"m{n}" for n in range(5)]
    assert distinct == 5


def test_acknowledged_rows_wait_to_be_stored_until_someone_needs_them(
    event_store: EventStore, other_store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trickle of acknowledgements is stored in few inserts: rows linger until a reader, a
    store-now write or closing needs them (here the linger is an hour, so only those store them)."""
    monkeypatch.setattr(event_writer, "LINGER_SECONDS", 3600.0)
    writer = EventWriter(event_store, log=IngestLog(tmp_path))
    try:
        writer.accept(_rows("w1", _track("m1")))
        assert _stored(other_store) == []
        assert [m for _, m, _ in _stored(event_store)] == ["m1"]  # a reader waits, and is not kept waiting

        writer.accept(_rows("w1", _track("m2")))
        assert writer.write(_rows("w1", _track("m3"))) == 1
        assert [m for _, m, _ in _stored(other_store)] == ["m1", "m2", "m3"]

        writer.accept(_rows("w1", _track("m4")))
    finally:
        writer.close()
    assert [m for _, m, _ in _stored(other_store)] == ["m1", "m2", "m3", "m4"]


def test_waiting_for_some_messages_waits_only_for_theirs(
    event_store: EventStore, other_store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender looking up earlier results of its messageIds waits for those alone: acknowledged rows
    of other messages (or of the same ids in another workspace) keep lingering."""
    monkeypatch.setattr(event_writer, "LINGER_SECONDS", 3600.0)
    writer = EventWriter(event_store, log=IngestLog(tmp_path))
    try:
        writer.accept(_rows("w1", _track("m1")))
        writer.sync_messages("w1", ["m2"])
        writer.sync_messages("w2", ["m1"])
        assert _stored(other_store) == []

        writer.sync_messages("w1", ["m2", "m1"])
        assert [m for _, m, _ in _stored(other_store)] == ["m1"]
        writer.accept(_rows("w1", _track("m2")))
        writer.sync_messages("w1", ["m1"])  # stored already: nothing to wait for
        assert [m for _, m, _ in _stored(other_store)] == ["m1"]
    finally:
        writer.close()


def test_waiting_for_messages_waits_for_rows_an_earlier_process_left_in_the_log(
    event_store: EventStore, other_store: EventStore, tmp_path: Path
) -> None:
    first = EventWriter(event_store, log=IngestLog(tmp_path))
    _take_table_away(other_store)
    first.accept(_rows("w1", _track("m1")))
    first.close()  # the store refuses: m1 is only in the log
    second = EventWriter(event_store, log=IngestLog(tmp_path))
    try:
        _bring_table_back(other_store)
        second.sync_messages("w1", ["m1"])
        assert [m for _, m, _ in _stored(other_store)] == ["m1"]
    finally:
        second.close()
