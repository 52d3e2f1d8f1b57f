"""Durable, deduplicated, batched event writes (group commit).

A caller hands rows to `EventWriter.write` and is blocked until ClickHouse has accepted them, so an
acknowledgement means the rows are on disk (chdb writes the part before returning; a server answers a
synchronous insert after the write). Concurrent callers are coalesced: a flusher thread takes
everything pending, drops rows whose (workspace, messageId, type, event, user) is already stored or
repeated in the batch, and inserts the rest in one statement. Under load that makes few large inserts;
when idle a single request is written at once, with no added delay.

Whether a key is stored is asked of the store, for every key this process does not already know to be
stored: the store is the only memory that survives a crash. What the process does know is kept in two
places: the keys of rows it wrote or found stored recently (a bounded cache, so a retried batch skips
the lookup), and the keys of batches being written right now. A request that repeats a key another
flusher is writing waits for that write to end, then is deduplicated against its outcome, so two
flushers never both insert one key.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.errors import Unavailable
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EventRow
from engine.storage.event_store import EventStore

logger = logging.getLogger(__name__)

WRITE_TIMEOUT_SECONDS = 60.0

Key = tuple[str, str, str, str, str]


@dataclass(eq=False)
class _Pending:
    rows: Sequence[EventRow]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    written: int = 0


@dataclass(eq=False)
class _Batch:
    items: list[_Pending]
    # Every row of the batch is stored with this processing_time (see `EventWriter.watermark`).
    processing_time: datetime
    # The keys this batch may insert: no other flusher inserts them while the batch is in flight.
    reserved: set[Key]
    # Requests that repeat a reserved key; they are queued again once this batch has ended.
    waiting: list[_Pending] = field(default_factory=list)


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
    """Owns the flusher threads; `close()` drains what is pending before returning.

    `flushers` is how many batches may be written at once. One gives the largest batches (each
    insert has a fixed cost, so that is the most rows per second); more let a request start its
    write while an earlier batch is still being written.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        max_batch_rows: int = 50_000,
        flushers: int = 1,
        recent_keys: int = 100_000,
    ) -> None:
        if flushers < 1:
            raise ValueError("an event writer needs at least one flusher")
        self._store = store
        self._max_batch_rows = max_batch_rows
        self._pending: deque[_Pending] = deque()
        self._in_flight: dict[Key, _Batch] = {}
        self._flushing: list[_Batch] = []
        self._recent = _RecentKeys(recent_keys)
        self._busy = 0
        self._condition = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"feedgate-event-writer-{n}", daemon=True)
            for n in range(flushers)
        ]
        for thread in self._threads:
            thread.start()

    def write(self, rows: Sequence[EventRow]) -> int:
        """Store `rows` durably; return how many were new (the rest were duplicates).

        :raises Unavailable: the store refused or could not be reached; nothing was acknowledged.
        """
        if not rows:
            return 0
        pending = _Pending(rows)
        with self._condition:
            if self._closed:
                raise Unavailable("event writer is shutting down")
            self._pending.append(pending)
            self._condition.notify()
        if not pending.done.wait(WRITE_TIMEOUT_SECONDS):
            raise Unavailable("event store did not confirm the write in time")
        if pending.error is not None:
            raise pending.error
        return pending.written

    def watermark(self) -> datetime:
        """A time up to which every row this writer stores is stored already.

        Rows are stamped with their batch's processing_time, taken when the batch is formed, so the
        rows of batches still being written, and of batches not formed yet, are all later than the
        result; a period of processing_time up to it is complete (given a wall clock that does not step
        back). Truncated to the millisecond of the stored DateTime64(3).
        """
        with self._condition:
            now = datetime.now(UTC)
            oldest = min((batch.processing_time for batch in self._flushing), default=now)
        bound = min(oldest, now) - timedelta(milliseconds=1)
        return bound.replace(microsecond=bound.microsecond - bound.microsecond % 1000)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._condition:
                batch = None
                while batch is None:
                    if self._pending:
                        batch = self._take_batch()
                    elif self._closed and self._busy == 0:
                        # Nothing pending and no batch in flight that could queue a waiting request.
                        self._condition.notify_all()
                        return
                    else:
                        self._condition.wait()
                self._busy += 1
            try:
                fresh = self._flush(batch) if batch.items else None
            finally:
                with self._condition:
                    self._busy -= 1
                    self._end(batch, fresh)
                    self._condition.notify_all()
            for item in batch.items:
                item.done.set()

    def _take_batch(self) -> _Batch:
        """Take pending requests up to the row limit and reserve their keys (under the lock).

        A request with a key another batch has reserved waits for that batch instead of joining.
        """
        batch = _Batch(items=[], processing_time=datetime.now(UTC), reserved=set())
        rows = 0
        while self._pending and (
            not batch.items or rows + len(self._pending[0].rows) <= self._max_batch_rows
        ):
            item = self._pending.popleft()
            owner = next((self._in_flight[r.key] for r in item.rows if r.key in self._in_flight), None)
            if owner is not None:
                owner.waiting.append(item)
                continue
            batch.items.append(item)
            rows += len(item.rows)
            for row in item.rows:
                if row.key not in self._recent:
                    batch.reserved.add(row.key)
        for key in batch.reserved:
            self._in_flight[key] = batch
        if batch.items:
            self._flushing.append(batch)
        return batch

    def _end(self, batch: _Batch, fresh: list[Key] | None) -> None:
        """Release the batch's keys, remember what is now stored, queue the requests that waited."""
        for key in batch.reserved:
            del self._in_flight[key]
        if batch.items:
            self._flushing.remove(batch)
        if fresh is not None:
            self._recent.add(batch.reserved)
        # Ahead of newer requests: they waited while the batch was written.
        self._pending.extendleft(reversed(batch.waiting))

    def _flush(self, batch: _Batch) -> list[Key] | None:
        """Write the batch; return the keys it inserted, or None when nothing was written."""
        try:
            stored = self._stored_keys(batch.reserved)
            seen: set[Key] = set()
            fresh: list[EventRow] = []
            for item in batch.items:
                for row in item.rows:
                    if row.key in batch.reserved and row.key not in stored and row.key not in seen:
                        seen.add(row.key)
                        fresh.append(row)
                        item.written += 1
            self._store.insert(
                "user_events_v2",
                [row.values(batch.processing_time) for row in fresh],
                EVENT_COLUMNS,
                EVENT_COLUMN_TYPES,
            )
            return [row.key for row in fresh]
        except Exception as error:
            logger.warning("event batch of %d request(s) not written: %s", len(batch.items), error)
            failure = (
                error if isinstance(error, Unavailable) else Unavailable("event store rejected the write")
            )
            for item in batch.items:
                item.written = 0
                item.error = failure
            return None

    def _stored_keys(self, keys: set[Key]) -> set[Key]:
        """Which of `keys` the store already holds (one lookup by message id)."""
        if not keys:
            return set()
        stored = self._store.select_json(
            "SELECT workspace_id, message_id, toString(event_type), event, user_or_anonymous_id"
            " FROM user_events_v2"
            " WHERE workspace_id IN {workspaces:Array(String)} AND message_id IN {ids:Array(String)}",
            {
                "workspaces": sorted({key[0] for key in keys}),
                "ids": sorted({key[1] for key in keys}),
            },
        )
        return {(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in stored}
