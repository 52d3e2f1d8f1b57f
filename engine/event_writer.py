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

from engine.errors import Unavailable
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EventRow
from engine.storage.event_store import EventStore

logger = logging.getLogger(__name__)

WRITE_TIMEOUT_SECONDS = 60.0

Key = tuple[str, str, str, str, str]


@dataclass(eq=False)
class _Pending:
    rows: Sequence[EventRow]
    # Called from the flusher thread once the rows are stored or refused.
    on_done: Callable[[], object] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    written: int = 0

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
    """Owns the flusher thread; `close()` drains what is pending before returning."""

    def __init__(
        self, store: EventStore, *, max_batch_rows: int = 50_000, recent_keys: int = 100_000
    ) -> None:
        self._store = store
        self._max_batch_rows = max_batch_rows
        self._pending: deque[_Pending] = deque()
        self._recent = _RecentKeys(recent_keys)
        # The processing_time of the batch being written, if one is (see `watermark`).
        self._writing: datetime | None = None
        self._condition = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="feedgate-event-writer", daemon=True)
        self._thread.start()

    def write(self, rows: Sequence[EventRow]) -> int:
        """Store `rows` durably; return how many were new (the rest were duplicates).

        :raises Unavailable: the store refused or could not be reached; nothing was acknowledged.
        """
        if not rows:
            return 0
        pending = self._enqueue(_Pending(rows))
        if not pending.done.wait(WRITE_TIMEOUT_SECONDS):
            raise Unavailable("event store did not confirm the write in time")
        return pending.result()

    async def write_async(self, rows: Sequence[EventRow]) -> int:
        """`write` for a coroutine: it waits without holding a thread, so the number of requests
        waiting on one flush is not capped by a thread pool (each waiting request joins the batch)."""
        if not rows:
            return 0
        loop = asyncio.get_running_loop()
        stored = loop.create_future()

        def resolve() -> None:
            if not stored.done():
                stored.set_result(None)

        def wake() -> None:
            # A closed loop raises RuntimeError: nobody waits for this write any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve)

        pending = self._enqueue(_Pending(rows, on_done=wake))
        try:
            # A timeout or a cancelled request cancels `stored`; `resolve` then leaves it alone.
            await asyncio.wait_for(stored, WRITE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise Unavailable("event store did not confirm the write in time") from None
        return pending.result()

    def _enqueue(self, pending: _Pending) -> _Pending:
        with self._condition:
            if self._closed:
                raise Unavailable("event writer is shutting down")
            self._pending.append(pending)
            self._condition.notify()
        return pending

    def watermark(self) -> datetime:
        """A time up to which every row this writer stores is stored already.

        Rows are stamped with their batch's processing_time, taken when the batch is formed, so the
        rows of the batch being written, and of batches not formed yet, are all later than the result:
        a period of processing_time up to it is complete (given a wall clock that does not step back).
        Truncated to the millisecond of the stored DateTime64(3).
        """
        with self._condition:
            now = datetime.now(UTC)
            writing = self._writing
        bound = (now if writing is None else min(writing, now)) - timedelta(milliseconds=1)
        return bound.replace(microsecond=bound.microsecond - bound.microsecond % 1000)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closed:
                    self._condition.wait()
                if not self._pending and self._closed:
                    return
                batch = self._take_batch()
                # Taken under the lock, so `watermark` never passes a batch about to be written.
                processing_time = self._writing = datetime.now(UTC)
            try:
                self._flush(batch, processing_time)
            finally:
                with self._condition:
                    self._writing = None
            for item in batch:
                item.finish()

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0].rows) <= self._max_batch_rows):
            item = self._pending.popleft()
            batch.append(item)
            rows += len(item.rows)
        return batch

    def _flush(self, batch: list[_Pending], processing_time: datetime) -> None:
        try:
            unknown = {row.key for item in batch for row in item.rows if row.key not in self._recent}
            stored = self._stored_keys(unknown)
            fresh: list[EventRow] = []
            for item in batch:
                for row in item.rows:
                    if row.key in unknown and row.key not in stored:
                        unknown.discard(row.key)  # a key repeated in the batch is written once
                        fresh.append(row)
                        item.written += 1
            self._store.insert(
                "user_events_v2",
                [row.values(processing_time) for row in fresh],
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
            return
        self._recent.add(stored)
        self._recent.add(row.key for row in fresh)

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
