"""Durable, deduplicated, batched event writes (group commit).

`write` blocks its caller until ClickHouse has accepted the rows (chdb writes the part before
returning; a server answers a synchronous insert after the write). `accept` (and `accept_async`)
blocks only until the rows are durable: with an ingest log (engine/ingest_log.py), once they are in
the log; without one, as `write`. Rows acknowledged through the log are stored behind it, lingering a
moment so that a trickle makes few inserts; whoever reads the store first waits for them (`sync`, the
store's read barrier), so a process reads its own acknowledged writes.

One flusher thread takes everything pending, drops rows whose (workspace, messageId, type, event,
user) is already stored or repeated in the batch, and inserts the rest in one statement. Under load
that makes few large inserts (each insert has a fixed cost of its own, in ClickHouse); when idle a
store-now write is written at once, with no added delay.

Whether a key is stored is asked of the store, because the store is the only memory that survives a
crash. The writer also remembers the keys it wrote or found stored lately (a bounded cache), and asks
the store only about the others: a retried batch then skips the lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import Unavailable
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EventRow
from engine.ingest_log import IngestLog, read_commits
from engine.storage.event_store import EventStore

logger = logging.getLogger(__name__)

WRITE_TIMEOUT_SECONDS = 60.0
# How long rows already acknowledged through the log wait before a failed store write is tried again.
RETRY_SECONDS = 1.0
# Rows acknowledged through the log wait up to this long to be stored, so that a trickle of events
# makes a few inserts a second rather than one per acknowledgement (each insert costs the store
# milliseconds of CPU of its own); a reader waiting for them, a store-now write or a full batch cuts
# the wait short.
LINGER_SECONDS = 0.25
_STAMP_STEP = timedelta(milliseconds=1)  # the resolution of the stored DateTime64(3)

Key = tuple[str, str, str, str, str]


@dataclass(eq=False)
class _Pending:
    rows: Sequence[EventRow]
    # Called from the flusher thread once the rows are stored or refused.
    on_done: Callable[[], object] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    written: int = 0
    # The processing_time of the rows, given as they join the queue of rows to store (see `_stamp`).
    stamp: datetime | None = None
    # Set on rows committed to the ingest log: the commit's sequence number, and when it was made.
    sequence: int | None = None
    committed_at: float = 0.0
    # On a commit: the acceptances it holds.
    parts: Sequence[_Pending] = ()

    def finish(self) -> None:
        self.done.set()
        if self.on_done is not None:
            self.on_done()

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        return self.written


class _RecentKeys:
    """Keys known to be stored, oldest forgotten first; a hit spares a lookup, a miss proves nothing."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._keys: dict[Key, None] = {}

    def __contains__(self, key: Key) -> bool:
        return key in self._keys

    def add(self, keys: Iterable[Key]) -> None:
        if self._capacity <= 0:
            return
        for key in keys:
            self._keys[key] = None
        excess = len(self._keys) - self._capacity
        if excess > 0:
            for key in list(self._keys)[:excess]:
                del self._keys[key]


class EventWriter:
    """Owns the flusher thread (and with a log, the committer thread); `close()` drains what is
    pending before returning."""

    def __init__(
        self,
        store: EventStore,
        *,
        log: IngestLog | None = None,
        max_batch_rows: int = 50_000,
        recent_keys: int = 100_000,
        max_backlog_rows: int = 200_000,
    ) -> None:
        self._store = store
        self._log = log
        self._max_batch_rows = max_batch_rows
        self._max_backlog_rows = max_backlog_rows
        self._pending: deque[_Pending] = deque()
        self._recent = _RecentKeys(recent_keys)
        # The earliest processing_time of the batch being written, if one is (see `watermark`), and
        # the last one given.
        self._writing: datetime | None = None
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._condition = threading.Condition()
        self._closed = False
        # With a log: acceptances waiting for their commit, rows committed but not stored yet, the
        # last commit stored, and whether files of an earlier process are still being stored.
        self._to_commit: deque[_Pending] = deque()
        # Acceptances not stored yet, wherever they are (waiting, being committed, queued, written):
        # what `sync_messages` looks through.
        self._unstored: dict[_Pending, None] = {}
        self._backlog_rows = 0
        self._stored_sequence = 0
        self._replaying = log is not None and bool(log.earlier_files)
        self._committer: threading.Thread | None = None
        self._committer_done = log is None
        # Someone waits for the rows pending (a reader, or a store-now write): store them at once.
        self._flush_requested = False
        self._thread = threading.Thread(target=self._run, name="feedgate-event-writer", daemon=True)
        if log is not None:
            self._committer = threading.Thread(
                target=self._commit, args=(log,), name="feedgate-ingest-log", daemon=True
            )
            self._committer.start()
            store.read_barrier = self.sync
        self._thread.start()

    def write(self, rows: Sequence[EventRow]) -> int:
        """Store `rows` and return how many were new (the rest were duplicates).

        :raises Unavailable: the store refused or could not be reached; nothing was acknowledged.
        """
        if not rows:
            return 0
        return self._wait(self._enqueue(_Pending(rows), self._pending))

    def accept(self, rows: Sequence[EventRow]) -> None:
        """Return once `rows` are durable: in the log when there is one, else in the store.

        :raises Unavailable: neither took them; nothing was acknowledged.
        """
        if rows:
            self._wait(self._enqueue(_Pending(rows), self._accepting_queue()))

    def sync_messages(self, workspace_id: str, message_ids: Iterable[str]) -> None:
        """Return once every accepted row of the workspace with one of these messageIds is in the
        store: at once when none waits, where `sync` would wait for every row accepted before.

        :raises Unavailable: the store has not taken them in time.
        """
        wanted = set(message_ids)
        with self._condition:
            waiting = self._replaying or any(
                row.workspace_id == workspace_id and row.message_id in wanted
                for pending in self._unstored
                for row in pending.rows
            )
        if waiting:
            self.sync()

    async def accept_async(self, rows: Sequence[EventRow]) -> None:
        """`accept` for a coroutine: it waits without holding a thread, so the number of requests
        waiting on one commit is not capped by a thread pool (each waiting request joins it)."""
        if not rows:
            return
        loop = asyncio.get_running_loop()
        durable = loop.create_future()

        def resolve() -> None:
            if not durable.done():
                durable.set_result(None)

        def wake() -> None:
            # A closed loop raises RuntimeError: nobody waits for this write any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve)

        pending = self._enqueue(_Pending(rows, on_done=wake), self._accepting_queue())
        try:
            # A timeout or a cancelled request cancels `durable`; `resolve` then leaves it alone.
            await asyncio.wait_for(durable, WRITE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise Unavailable("event store did not confirm the write in time") from None
        pending.result()

    def sync(self) -> None:
        """Return once every row accepted before the call is in the store (at once without a log).

        :raises Unavailable: the store has not taken them in time.
        """
        if self._log is None or threading.current_thread() in (self._thread, self._committer):
            return
        target = self._log.appended
        with self._condition:
            if self._stored_sequence < target:
                self._flush_requested = True
                self._condition.notify_all()
            caught_up = self._condition.wait_for(
                lambda: not self._replaying and self._stored_sequence >= target, WRITE_TIMEOUT_SECONDS
            )
        if not caught_up:
            raise Unavailable("event store has not caught up with the acknowledged events")

    def _accepting_queue(self) -> deque[_Pending]:
        """Where accepted rows go: to the log's committer, or without a log straight to the store."""
        return self._pending if self._log is None else self._to_commit

    def _wait(self, pending: _Pending) -> int:
        if not pending.done.wait(WRITE_TIMEOUT_SECONDS):
            raise Unavailable("event store did not confirm the write in time")
        return pending.result()

    def _enqueue(self, pending: _Pending, queue: deque[_Pending]) -> _Pending:
        with self._condition:
            if self._closed:
                raise Unavailable("event writer is shutting down")
            if queue is self._pending:
                pending.stamp = self._stamp()
                self._flush_requested = True  # its caller waits until the store has the rows
            else:
                self._unstored[pending] = None
            queue.append(pending)
            self._condition.notify_all()
        return pending

    def watermark(self) -> datetime:
        """A time up to which every row this writer stores is stored already.

        Rows are stamped with their processing_time as they join the queue of rows to store, never
        earlier than the clock then, and the result precedes the stamps of every row still queued or
        being written, so a period of processing_time up to it is complete (given a wall clock that
        does not step back). Rows accepted before the call are stored first. Truncated to the
        millisecond of the stored DateTime64(3).
        """
        self.sync()
        with self._condition:
            now = datetime.now(UTC)
            queued = self._pending[0].stamp if self._pending else None  # the earliest queued
            unstored = [stamp for stamp in (self._writing, queued) if stamp is not None]
        bound = min([now, *unstored]) - timedelta(milliseconds=1)
        return bound.replace(microsecond=bound.microsecond - bound.microsecond % 1000)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._committer is not None:
            self._committer.join()
            with self._condition:
                self._committer_done = True
                self._condition.notify_all()
        self._thread.join()
        if self._log is not None:
            self._store.read_barrier = None
            self._log.close()

    def _commit(self, log: IngestLog) -> None:
        """The committer: append what waits to the log in one record, then acknowledge it."""
        while True:
            with self._condition:
                while not self._closed and (
                    not self._to_commit or self._backlog_rows >= self._max_backlog_rows
                ):
                    self._condition.wait()
                if not self._to_commit:
                    return
                batch = list(self._to_commit)
                self._to_commit.clear()
            rows = [row for item in batch for row in item.rows]
            try:
                sequence = log.append(rows)
            except Unavailable as error:
                logger.warning("%d event(s) not written to the ingest log: %s", len(rows), error)
                with self._condition:
                    for item in batch:
                        item.error = error
                        self._unstored.pop(item, None)
            else:
                with self._condition:
                    self._pending.append(
                        _Pending(
                            rows,
                            stamp=self._stamp(),
                            sequence=sequence,
                            committed_at=time.monotonic(),
                            parts=batch,
                        )
                    )
                    self._backlog_rows += len(rows)
                    self._condition.notify_all()
            for item in batch:
                item.finish()

    def _run(self) -> None:
        if self._log is not None:
            self._store_earlier_files(self._log)
        while True:
            with self._condition:
                while True:
                    if not self._pending and self._closed and self._committer_done:
                        return
                    linger = self._linger_left()
                    if linger is not None and linger <= 0:
                        break
                    self._condition.wait(linger)
                self._flush_requested = False
                batch = self._take_batch()
                # Taken under the lock, so `watermark` never passes a batch about to be written.
                self._writing = batch[0].stamp
            try:
                error = self._flush(batch)
            finally:
                with self._condition:
                    self._writing = None
            if error is None:
                self._mark_stored(batch)
                requeued = []
            else:
                requeued = self._requeue_committed(batch)
            for item in batch:
                if item.sequence is None or not requeued:
                    item.finish()
            if requeued:
                with self._condition:
                    self._condition.wait(RETRY_SECONDS)

    def _linger_left(self) -> float | None:
        """How long the pending rows may still wait (<= 0: store them now; None: nothing pending).
        Call with the lock held."""
        if not self._pending:
            return None
        first = self._pending[0]
        if (
            self._flush_requested
            or self._closed
            or first.sequence is None
            or self._backlog_rows >= self._max_batch_rows
        ):
            return 0.0
        return first.committed_at + LINGER_SECONDS - time.monotonic()

    def _stamp(self) -> datetime:
        """The processing_time of rows joining the queue now: the clock's millisecond, or one past the
        last stamp given if that is later.

        Stamps only grow, so what was acknowledged in order reads back in that order (newest first,
        or the latest group assignment winning), however many acknowledgements one insert holds; and
        rows queued together stay in queue order. Call with the lock held.
        """
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
        self._last_stamp = max(now, self._last_stamp + _STAMP_STEP)
        return self._last_stamp

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0].rows) <= self._max_batch_rows):
            item = self._pending.popleft()
            batch.append(item)
            rows += len(item.rows)
        return batch

    def _mark_stored(self, batch: list[_Pending]) -> None:
        committed = [item for item in batch if item.sequence is not None]
        if not committed or self._log is None:
            return
        sequence = max(item.sequence for item in committed if item.sequence is not None)
        self._log.mark_stored(sequence)
        with self._condition:
            self._stored_sequence = sequence
            self._backlog_rows -= sum(len(item.rows) for item in committed)
            for item in committed:
                for part in item.parts:
                    self._unstored.pop(part, None)
            self._condition.notify_all()

    def _requeue_committed(self, batch: list[_Pending]) -> list[_Pending]:
        """After a failed flush, put the rows committed to the log back in front, to be tried again
        after a pause: they are acknowledged already (the callers waiting on the store are told of the
        failure). When closing they are left to the log, for the next process.
        """
        committed = [item for item in batch if item.sequence is not None]
        with self._condition:
            if self._closed:
                return []
            for item in reversed(committed):
                item.error, item.written = None, 0
                self._pending.appendleft(item)
        return committed

    def _store_earlier_files(self, log: IngestLog) -> None:
        """Store what an earlier process acknowledged and left in its log files, one file at a time."""
        for path in log.earlier_files:
            commits = [_Pending(rows) for rows in read_commits(path)]
            while commits:
                chunk: list[_Pending] = []
                rows = 0
                while commits and (not chunk or rows + len(commits[0].rows) <= self._max_batch_rows):
                    rows += len(commits[0].rows)
                    chunk.append(commits.pop(0))
                with self._condition:
                    for item in chunk:
                        item.stamp = self._stamp()
                while self._flush(chunk) is not None:
                    with self._condition:
                        if self._closed:
                            return  # the file stays for the next process
                        self._condition.wait(RETRY_SECONDS)
            logger.info("stored the events left in the ingest log file %s", path.name)
            path.unlink()
        with self._condition:
            self._replaying = False
            self._condition.notify_all()

    def _flush(self, batch: list[_Pending]) -> Unavailable | None:
        """Store the batch's rows not stored yet; on failure, return the error and set it on every item."""
        try:
            unknown = {row.key for item in batch for row in item.rows if row.key not in self._recent}
            stored = self._stored_keys(unknown)
            fresh: list[EventRow] = []
            values: list[list[Any]] = []
            for item in batch:
                stamp = item.stamp
                assert stamp is not None, "stamped as it joined the queue"
                for row in item.rows:
                    if row.key in unknown and row.key not in stored:
                        unknown.discard(row.key)  # a key repeated in the batch is written once
                        fresh.append(row)
                        values.append(row.values(stamp))
                        item.written += 1
            self._store.insert(
                "user_events_v2",
                values,
                EVENT_COLUMNS,
                EVENT_COLUMN_TYPES,
            )
        except Exception as error:
            logger.warning("event batch of %d request(s) not written: %s", len(batch), error)
            failure = (
                error if isinstance(error, Unavailable) else Unavailable("event store rejected the write")
            )
            for item in batch:
                item.written = 0
                item.error = failure
            return failure
        self._recent.add(stored)
        self._recent.add(row.key for row in fresh)
        return None

    def _stored_keys(self, keys: set[Key]) -> set[Key]:
        """Which of `keys` the store holds already: one lookup by message id."""
        if not keys:
            return set()
        # The ids travel as one JSON text: ClickHouse parses that faster than an Array(String) literal
        # of hundreds of elements.
        stored = self._store.select_json(
            "SELECT workspace_id, message_id, toString(event_type), event, user_or_anonymous_id"
            " FROM user_events_v2"
            " WHERE workspace_id IN {workspaces:Array(String)}"
            " AND message_id IN JSONExtract({ids:String}, 'Array(String)')",
            {
                "workspaces": sorted({key[0] for key in keys}),
                "ids": json.dumps(sorted({key[1] for key in keys}), ensure_ascii=False),
            },
        )
        return {(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in stored}
