"""Files sent with track events (Dittofeed §5.1): `files: [{type:"Base64Encoded", name, mimeType,
data}]` are decoded, written to blob storage at `event-files/<workspaceId>/<messageId>/<name>`, and
the event's `properties.DFAttachedFiles[name]` becomes `{type:"BlobStorage", key, mimeType}`.

Decoding happens before anything is written, so a bad file in a batch stores nothing; blobs are written
before the events, so an acknowledged event never names a blob that is not there.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from engine.blob_storage import MAX_SEGMENT_BYTES, BlobStore
from engine.errors import InvalidInput

ATTACHED_FILES_PROPERTY = "DFAttachedFiles"
BASE64_ENCODED = "Base64Encoded"
BLOB_STORAGE = "BlobStorage"
EVENT_FILES_PREFIX = "event-files"

_WHITESPACE = re.compile(r"\s+")
_URL_SAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class EventFile:
    name: str
    mime_type: str
    data: bytes


def decode_base64(text: str) -> bytes | None:
    """Decode standard or URL-safe base64, padded or not, line-wrapped or not; None if it is not base64."""
    compact = _WHITESPACE.sub("", text).translate(_URL_SAFE)
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_key_segment(value: str, where: str) -> str:
    """Return `value` if it can be one segment of a blob key. :raises InvalidInput: naming `where`."""
    if value in (".", "..") or "/" in value or "\\" in value:
        raise InvalidInput(f"{where} must not contain '/' or '\\\\' nor be '.' or '..'", field=where)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise InvalidInput(f"{where} must not contain control characters", field=where)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise InvalidInput(f"{where} must be at most {MAX_SEGMENT_BYTES} bytes", field=where)
    return value


def event_file_key(workspace_id: str, message_id: str, name: str) -> str:
    return f"{EVENT_FILES_PREFIX}/{workspace_id}/{message_id}/{name}"


def read_event_files(message: dict[str, Any], where: str) -> list[EventFile]:
    """Validate and decode a track message's `files` (`where` locates the message, e.g. `body/batch/2`).

    :raises InvalidInput: naming the offending field, e.g. `body/files/0/data is not valid base64`.
    """
    raw_files = message.get("files")
    if raw_files is None:
        return []
    if not isinstance(raw_files, list):
        raise InvalidInput(f"{where}/files must be array", field=f"{where}/files")
    if raw_files:
        check_key_segment(str(message.get("messageId", "")), f"{where}/messageId")
    return [_read_file(item, f"{where}/files/{index}") for index, item in enumerate(raw_files)]


def _read_file(item: Any, where: str) -> EventFile:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be object", field=where)
    if item.get("type") != BASE64_ENCODED:
        field = f"{where}/type"
        raise InvalidInput(f"{field} must be equal to constant {BASE64_ENCODED}", field=field)
    for name in ("name", "mimeType", "data"):
        if not isinstance(item.get(name), str):
            raise InvalidInput(f"{where}/{name} must be string", field=f"{where}/{name}")
    if not item["name"]:
        raise InvalidInput(f"{where}/name must not be empty", field=f"{where}/name")
    check_key_segment(item["name"], f"{where}/name")
    data = decode_base64(item["data"])
    if data is None:
        raise InvalidInput(f"{where}/data is not valid base64", field=f"{where}/data")
    return EventFile(name=item["name"], mime_type=item["mimeType"], data=data)


def store_event_files(
    blob_store: BlobStore, workspace_id: str, message: dict[str, Any], files: list[EventFile]
) -> dict[str, Any]:
    """Write `files` to blob storage and return `message` with `properties.DFAttachedFiles` naming them.

    The returned message still carries `files`; the row builder leaves that field out of the stored event.
    """
    if not files:
        return message
    attached = dict(_as_dict((message.get("properties") or {}).get(ATTACHED_FILES_PROPERTY)))
    for file in files:
        key = event_file_key(workspace_id, message["messageId"], file.name)
        blob_store.put(key, file.data, file.mime_type)
        attached[file.name] = {"type": BLOB_STORAGE, "key": key, "mimeType": file.mime_type}
    properties = {**(message.get("properties") or {}), ATTACHED_FILES_PROPERTY: attached}
    return {**message, "properties": properties}


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
