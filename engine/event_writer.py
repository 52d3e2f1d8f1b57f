"""Durable, deduplicated, batched event writes (group commit).

A caller hands rows to `EventWriter.write` and is blocked until ClickHouse has accepted them, so an
acknowledgement means the rows are on disk (chdb writes the part before returning; a server answers a
synchronous insert after the write). Concurrent callers are coalesced: one flusher thread takes
everything pending, drops rows whose (workspace, messageId, type, event, user) is already stored or
repeated in the batch, and inserts the rest in one statement. Under load that makes few large inserts
(each insert has a fixed cost of its own, in ClickHouse); when idle a single request is written at
once, with no added delay.

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
    # Set on rows committed to the ingest log: the commit's sequence number.
    sequence: int | None = None

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
        # The first processing_time of the batch being written, if one is (see `watermark`), and the
        # last one given to a batch.
        self._writing: datetime | None = None
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._condition = threading.Condition()
        self._closed = False
        # With a log: acceptances waiting for their commit, rows committed but not stored yet, the
        # last commit stored, and whether files of an earlier process are still being stored.
        self._to_commit: deque[_Pending] = deque()
        self._backlog_rows = 0
        self._stored_sequence = 0
        self._replaying = log is not None and bool(log.earlier_files)
        self._committer: threading.Thread | None = None
        self._committer_done = log is None
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
        pending = self._enqueue(_Pending(rows), self._pending)
        if not pending.done.wait(WRITE_TIMEOUT_SECONDS):
            raise Unavailable("event store did not confirm the write in time")
        return pending.result()

    def accept(self, rows: Sequence[EventRow]) -> None:
        """Return once `rows` are durable: in the log when there is one, else in the store.

        :raises Unavailable: neither took them; nothing was acknowledged.
        """
        if not rows:
            return
        pending = self._enqueue(_Pending(rows), self._pending if self._log is None else self._to_commit)
        if not pending.done.wait(WRITE_TIMEOUT_SECONDS):
            raise Unavailable("event store did not confirm the write in time")
        pending.result()

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

        queue = self._pending if self._log is None else self._to_commit
        pending = self._enqueue(_Pending(rows, on_done=wake), queue)
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
            caught_up = self._condition.wait_for(
                lambda: not self._replaying and self._stored_sequence >= target, WRITE_TIMEOUT_SECONDS
            )
        if not caught_up:
            raise Unavailable("event store has not caught up with the acknowledged events")

    def _enqueue(self, pending: _Pending, queue: deque[_Pending]) -> _Pending:
        with self._condition:
            if self._closed:
                raise Unavailable("event writer is shutting down")
            queue.append(pending)
            self._condition.notify_all()
        return pending

    def watermark(self) -> datetime:
        """A time up to which every row this writer stores is stored already.

        Rows are stamped with processing_times taken when their batch is formed, never earlier than
        the clock then, so the rows of the batch being written, and of batches not formed yet, are all
        later than the result: a period of processing_time up to it is complete (given a wall clock
        that does not step back).
        Rows accepted before the call are stored first. Truncated to the millisecond of the stored
        DateTime64(3).
        """
        self.sync()
        with self._condition:
            now = datetime.now(UTC)
            writing = self._writing
        bound = (now if writing is None else min(writing, now)) - timedelta(milliseconds=1)
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
                for item in batch:
                    item.error = error
            else:
                with self._condition:
                    self._pending.append(_Pending(rows, sequence=sequence))
                    self._backlog_rows += len(rows)
                    self._condition.notify_all()
            for item in batch:
                item.finish()

    def _run(self) -> None:
        if self._log is not None:
            self._store_earlier_files(self._log)
        while True:
            with self._condition:
                while not self._pending and not (self._closed and self._committer_done):
                    self._condition.wait()
                if not self._pending:
                    return
                batch = self._take_batch()
                # Taken under the lock, so `watermark` never passes a batch about to be written.
                processing_time = self._writing = self._stamp(batch)
            try:
                error = self._flush(batch, processing_time)
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

    def _stamp(self, batch: list[_Pending]) -> datetime:
        """The processing_time of the batch's first item; each next item's is a millisecond later.

        Stamps only grow, from one item to the next and from batch to batch, so what was acknowledged
        in order reads back in that order (newest first, or the latest group assignment winning),
        however many acknowledgements one insert holds. Call with the lock held.
        """
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
        first = max(now, self._last_stamp + _STAMP_STEP)
        self._last_stamp = first + _STAMP_STEP * (len(batch) - 1)
        return first

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
                while True:
                    with self._condition:
                        stamp = self._stamp(chunk)
                    if self._flush(chunk, stamp) is None:
                        break
                    with self._condition:
                        if self._closed:
                            return  # the file stays for the next process
                        self._condition.wait(RETRY_SECONDS)
            logger.info("stored the events left in the ingest log file %s", path.name)
            path.unlink()
        with self._condition:
            self._replaying = False
            self._condition.notify_all()

    def _flush(self, batch: list[_Pending], processing_time: datetime) -> Unavailable | None:
        """Store the batch's rows not stored yet; on failure, return the error and set it on every item."""
        try:
            unknown = {row.key for item in batch for row in item.rows if row.key not in self._recent}
            stored = self._stored_keys(unknown)
            fresh: list[EventRow] = []
            values: list[list[Any]] = []
            for offset, item in enumerate(batch):
                stamp = processing_time + _STAMP_STEP * offset
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
