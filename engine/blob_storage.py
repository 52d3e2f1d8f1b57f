"""Blob storage (Dittofeed's BLOB_STORAGE_*): the `BlobStore` interface, the key rules every store
enforces, the local-directory store, and `open_blob_store`, which picks the store the settings name.

Keys are slash-separated paths such as `event-files/<workspaceId>/<messageId>/<name>`. Every store
refuses the same keys (absolute, `.`/`..` or empty segments, backslashes, control characters), so a
key that works on one store works on the other and none can leave its directory or bucket prefix.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

from engine.durable_files import fsync_directory
from engine.errors import Conflict, InvalidInput, Unavailable

MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_BYTES = 200  # below the 255-byte file-name limit of common file systems
LOCAL_BLOB_DIR = "blobs"

logger = logging.getLogger(__name__)


class InvalidBlobKey(InvalidInput):
    """A key no store accepts; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="key")


class BlobStore(Protocol):
    """Bytes by key. `put` returns once the bytes are durable; `get` returns None for a missing key."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...


def check_key(key: str) -> str:
    """Return `key` if every store accepts it.

    :raises InvalidBlobKey: absolute, with an empty, `.` or `..` segment, a backslash, a control
        character (NUL included), or too long.
    """
    if not isinstance(key, str) or not key:
        raise InvalidBlobKey("blob key must be a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidBlobKey(f"blob key is longer than {MAX_KEY_BYTES} bytes")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidBlobKey("blob key must not contain control characters")
    if "\\" in key:
        raise InvalidBlobKey("blob key must not contain a backslash")
    if key.startswith("/"):
        raise InvalidBlobKey("blob key must be relative")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidBlobKey("blob key must not have empty, '.' or '..' segments")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidBlobKey(f"blob key segments must be at most {MAX_SEGMENT_BYTES} bytes")
    return key


class LocalBlobStore:
    """Blobs as files under one directory (the embedded default: `<data dir>/blobs`).

    A key maps to the path of the same name below the root. Content types are not kept: readers get
    the bytes and take the type from the descriptor that names the key, as with S3 downloads here.
    One limitation S3 does not have: a key cannot also be a "directory" of other keys (`a/b` and
    `a/b/c`); such a put is refused with Conflict. feedgate's keys all have a fixed depth.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = os.path.realpath(self.root)

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*check_key(key).split("/"))
        # A symlink planted inside the root must not lead out of it either.
        real = os.path.realpath(path)
        if os.path.commonpath([self._real_root, real]) != self._real_root:
            raise InvalidBlobKey("blob key resolves outside the blob directory")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise Conflict(f"blob key {key!r} lies below another blob") from None
        if path.is_dir():
            raise Conflict(f"blob key {key!r} is a prefix of other blobs")
        # Write a temporary file, flush it to disk, then rename: a reader never sees half a blob and an
        # acknowledged put survives a crash.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None


def open_blob_store(
    *,
    enabled: bool,
    data_dir: Path,
    endpoint: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    bucket: str = "dittofeed",
    region: str = "us-east-1",
) -> BlobStore | None:
    """The configured store, or None when blob storage is disabled (ENABLE_BLOB_STORAGE unset).

    An endpoint or access key selects S3 (MinIO and other S3-compatible servers through the endpoint,
    AWS itself with keys alone); otherwise blobs live under `<data_dir>/blobs`. Opening S3 makes sure
    the bucket exists, as Dittofeed's bootstrap does; if the server cannot be reached yet, the app still
    starts, requests that need a blob answer 503, and the first put after it is back creates the bucket.
    """
    if not enabled:
        return None
    if endpoint or access_key_id:
        from engine.blob_storage_s3 import S3BlobStore  # boto3 is loaded only when S3 is used

        store = S3BlobStore(
            bucket=bucket,
            endpoint=endpoint,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
        try:
            store.ensure_bucket()
        except Unavailable:
            logger.warning("blob storage is unreachable at start-up; continuing without it for now")
        return store
    return LocalBlobStore(data_dir / LOCAL_BLOB_DIR)
