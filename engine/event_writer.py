"""Durable, deduplicated, batched event writes (group commit).

A caller hands rows to `EventWriter.write` and is blocked until ClickHouse has accepted them, so an
acknowledgement means the rows are on disk (chdb writes the part before returning; a server answers a
synchronous insert after the write). Concurrent callers are coalesced: one flusher thread takes
everything pending, drops rows whose (workspace, messageId, type, event, user) is already stored or
repeated in the batch, and inserts the rest in one statement. Under load that makes few large inserts;
when idle a single request is written at once, with no added delay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine.errors import Unavailable
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EventRow
from engine.storage.event_store import EventStore

logger = logging.getLogger(__name__)

WRITE_TIMEOUT_SECONDS = 60.0


@dataclass
class _Pending:
    rows: Sequence[EventRow]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    written: int = 0


class EventWriter:
    """Owns the flusher thread; `close()` drains what is pending before returning."""

    def __init__(self, store: EventStore, *, max_batch_rows: int = 50_000) -> None:
        self._store = store
        self._max_batch_rows = max_batch_rows
        self._pending: list[_Pending] = []
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
            self._flush(batch)

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0].rows) <= self._max_batch_rows):
            item = self._pending.pop(0)
            batch.append(item)
            rows += len(item.rows)
        return batch

    def _flush(self, batch: list[_Pending]) -> None:
        try:
            seen = self._stored_keys([row for item in batch for row in item.rows])
            fresh: list[EventRow] = []
            for item in batch:
                for row in item.rows:
                    if row.key not in seen:
                        seen.add(row.key)
                        fresh.append(row)
                        item.written += 1
            now = datetime.now(UTC)
            self._store.insert(
                "user_events_v2", [row.values(now) for row in fresh], EVENT_COLUMNS, EVENT_COLUMN_TYPES
            )
        except Exception as error:
            logger.warning("event batch of %d request(s) not written: %s", len(batch), error)
            failure = (
                error if isinstance(error, Unavailable) else Unavailable("event store rejected the write")
            )
            for item in batch:
                item.written = 0
                item.error = failure
        for item in batch:
            item.done.set()

    def _stored_keys(self, rows: list[EventRow]) -> set[tuple[str, str, str, str, str]]:
        message_ids = {row.message_id for row in rows}
        workspaces = {row.workspace_id for row in rows}
        stored = self._store.query(
            "SELECT workspace_id, message_id, toString(event_type), event, user_or_anonymous_id"
            " FROM user_events_v2"
            " WHERE workspace_id IN {workspaces:Array(String)} AND message_id IN {ids:Array(String)}",
            {"workspaces": sorted(workspaces), "ids": sorted(message_ids)},
        )
        return {(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in stored}
