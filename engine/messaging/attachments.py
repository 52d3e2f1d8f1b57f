"""Email attachments from File user-property values (Dittofeed §7.2, §7.4 attachmentUserProperties).

A value is either `{type:"Base64Encoded", name, mimeType, data}` or the descriptor a track event's files
became, `{type:"BlobStorage", key, mimeType, name?}`. A BlobStorage key must lie under the workspace's
own `event-files/<workspaceId>/` prefix: an event may carry any `DFAttachedFiles` value its sender
likes, and must not thereby attach another tenant's file.
"""

from __future__ import annotations

import json
from typing import Any

from engine.blob_storage import BlobStore, InvalidBlobKey, check_key
from engine.errors import InvalidInput
from engine.event_files import BASE64_ENCODED, BLOB_STORAGE, EVENT_FILES_PREFIX, decode_base64
from engine.messaging.providers.base import Attachment

__all__ = ["Attachment", "load_attachment"]

FIELD = "attachmentUserProperties"


def _invalid(message: str, property_name: str | None) -> InvalidInput:
    where = f"attachment {property_name!r}" if property_name else "attachment"
    return InvalidInput(f"{where}: {message}", field=FIELD)


def load_attachment(
    value: Any,
    blob_store: BlobStore | None,
    *,
    workspace_id: str,
    property_name: str | None = None,
) -> Attachment:
    """Resolve a File user-property value (parsed JSON, or its JSON text) to the bytes to attach.

    :raises InvalidInput: the value is no file, its data is not base64, the blob is outside the
        workspace, blob storage is disabled, or the blob is gone. `property_name` only words the message.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _invalid("value is not a file (text that is not JSON)", property_name) from None
    if not isinstance(value, dict):
        raise _invalid(f"value is not a file object but {type(value).__name__}", property_name)
    kind = value.get("type")
    mime_type = value.get("mimeType")
    if not isinstance(mime_type, str) or not mime_type:
        raise _invalid("file has no mimeType", property_name)
    if kind == BASE64_ENCODED:
        return _from_base64(value, mime_type, property_name)
    if kind == BLOB_STORAGE:
        return _from_blob_storage(value, mime_type, blob_store, workspace_id, property_name)
    raise _invalid(f"file type must be {BASE64_ENCODED} or {BLOB_STORAGE}, not {kind!r}", property_name)


def _from_base64(value: dict[str, Any], mime_type: str, property_name: str | None) -> Attachment:
    name, data = value.get("name"), value.get("data")
    if not isinstance(name, str) or not name:
        raise _invalid("Base64Encoded file has no name", property_name)
    decoded = decode_base64(data) if isinstance(data, str) else None
    if decoded is None:
        raise _invalid("Base64Encoded file data is not valid base64", property_name)
    return Attachment(name=name, mime_type=mime_type, data=decoded)


def _from_blob_storage(
    value: dict[str, Any],
    mime_type: str,
    blob_store: BlobStore | None,
    workspace_id: str,
    property_name: str | None,
) -> Attachment:
    key = value.get("key")
    if not isinstance(key, str) or not key:
        raise _invalid("BlobStorage file has no key", property_name)
    try:
        check_key(key)
    except InvalidBlobKey as error:
        raise _invalid(f"BlobStorage file key is invalid: {error.message}", property_name) from None
    if not key.startswith(f"{EVENT_FILES_PREFIX}/{workspace_id}/"):
        raise _invalid("BlobStorage file belongs to no event of this workspace", property_name)
    if blob_store is None:
        raise _invalid("BlobStorage file cannot be read: blob storage is disabled", property_name)
    data = blob_store.get(key)
    if data is None:
        raise _invalid(f"BlobStorage file {key!r} is not in blob storage", property_name)
    name = value.get("name")
    # Track events store the descriptor without a name; the key ends in it.
    name = name if isinstance(name, str) and name else key.rsplit("/", 1)[-1]
    return Attachment(name=name, mime_type=mime_type, data=data)
