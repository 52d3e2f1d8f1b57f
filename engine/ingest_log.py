"""The ingest log: acknowledged event rows on local disk until the event store holds them.

With a log, an acknowledgement costs one appended record and an fdatasync (a tenth of a millisecond
here) instead of a store insert (tens of milliseconds with the materialized views of
`user_events_v2`), and the store is written in large batches behind it. The log is one process's:
it lives in that process's data directory, so it suits the embedded store, which is one process too.

Files are `<number>.log` in one directory, each a run of records: a header (payload length, CRC-32
of the payload) and a JSON payload holding the rows of one commit. A file is deleted once every
commit in it is stored; the file being appended to is emptied instead, once everything is stored and
it has grown past a size. A process begins a new file; the files it found (`earlier_files`, left by a
process that stopped before their rows were stored) are for the writer to read back
(`read_commits`) and store. A torn or corrupt record ends its file: nothing was acknowledged from
it or after it, since an append is acknowledged only after its fdatasync. Rows read back may be
stored already; the writer's deduplication drops those.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.durable_files import fsync_directory
from engine.errors import Unavailable
from engine.events import EventRow

_HEADER = struct.Struct("<II")
# Text as UTF-8 rather than \u escapes: several times cheaper to write, and the C encoder either way.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An idle log whose rows are all stored is emptied only past this size, to spare a truncate per flush.
EMPTY_ABOVE_BYTES = 1 << 20
ROTATE_ABOVE_BYTES = 64 << 20


class IngestLog:
    """`append` is called from one thread (the writer's committer), the rest from another."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.earlier_files = sorted(directory.glob("*.log"))
        # Files of this process that are no longer appended to, each with the last commit it holds.
        self._full_files: list[tuple[Path, int]] = []
        self._sequence = 0
        self._stored = 0
        self._path: Path
        self._fd: int
        self._size: int
        last = max((int(path.stem) for path in self.earlier_files), default=0)
        self._open_file(last + 1)

    @property
    def appended(self) -> int:
        """The sequence number of the last commit appended: every one up to it is durable."""
        return self._sequence

    def append(self, commit: Sequence[EventRow]) -> int:
        """Write `commit` durably and return its sequence number (1, 2, … in this process).

        :raises Unavailable: the disk refused; nothing of the commit counts as written.
        """
        record = _encode(commit)
        with self._lock:
            size = self._size
            try:
                os.write(self._fd, record)
                os.fdatasync(self._fd)
            except OSError as error:
                self._undo_append(size)
                raise Unavailable(f"ingest log could not be written: {error.strerror}") from error
            self._size = size + len(record)
            self._sequence += 1
            if self._size > ROTATE_ABOVE_BYTES:
                self._full_files.append((self._path, self._sequence))
                os.close(self._fd)
                self._open_file(int(self._path.stem) + 1)
            return self._sequence

    def mark_stored(self, sequence: int) -> None:
        """Every commit up to `sequence` is in the store: drop the files that hold nothing else."""
        with self._lock:
            self._stored = max(self._stored, sequence)
            while self._full_files and self._full_files[0][1] <= self._stored:
                self._full_files.pop(0)[0].unlink(missing_ok=True)
            if self._stored == self._sequence and self._size > EMPTY_ABOVE_BYTES:
                try:
                    os.ftruncate(self._fd, 0)
                    os.fsync(self._fd)
                except OSError:
                    return  # emptied next time; replaying stored rows stores nothing twice
                self._size = 0

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)

    def _open_file(self, number: int) -> None:
        self._path = self._directory / f"{number:020d}.log"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        fsync_directory(self._directory)

    def _undo_append(self, size: int) -> None:
        """Cut a failed append off, so later records never follow a torn one; if even that fails,
        go on in a new file (the torn record then ends the old one, and nothing after it was
        acknowledged)."""
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            self._full_files.append((self._path, self._sequence))
            os.close(self._fd)
            self._open_file(int(self._path.stem) + 1)


def read_commits(path: Path) -> list[list[EventRow]]:
    """The rows of each whole record of a log file, up to the first torn or corrupt one."""
    return [_decode(payload) for payload in _read_records(path)]


def _encode(commit: Sequence[EventRow]) -> bytes:
    # The rows of a request share their server_time: convert each distinct one once.
    microseconds = {moment: _microseconds(moment) for moment in {row.server_time for row in commit}}
    payload = _ENCODER.encode(
        [
            [row.workspace_id, row.message_id, row.message_raw, microseconds[row.server_time], *row.key]
            for row in commit
        ]
    ).encode("utf-8", "surrogatepass")
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> list[EventRow]:
    return [
        EventRow(
            workspace_id,
            message_id,
            message_raw,
            _EPOCH + timedelta(microseconds=server_time),
            (key0, key1, key2, key3, key4),
        )
        for workspace_id, message_id, message_raw, server_time, key0, key1, key2, key3, key4 in json.loads(
            payload.decode("utf-8", "surrogatepass")
        )
    ]


def _read_records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, checksum = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != checksum:
            return
        yield payload
        offset += _HEADER.size + length


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)
