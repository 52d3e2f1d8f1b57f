"""File user-property values resolve to the bytes an email attaches: inline base64 or a blob of the
workspace's own events; anything else is refused with a message saying why."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from engine.blob_storage import LocalBlobStore
from engine.errors import InvalidInput
from engine.event_files import event_file_key
from engine.messaging.attachments import Attachment, load_attachment

PDF = b"%PDF-1.7\n\x00\x01binary\xff"
WORKSPACE = "11111111-1111-4111-8111-111111111111"
OTHER_WORKSPACE = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_a_base64_value_is_decoded(store: LocalBlobStore) -> None:
    value = {
        "type": "Base64Encoded",
        "name": "receipt.pdf",
        "mimeType": "application/pdf",
        "data": base64.b64encode(PDF).decode(),
    }
    assert load_attachment(value, store, workspace_id=WORKSPACE) == Attachment(
        "receipt.pdf", "application/pdf", PDF
    )


def test_base64_without_padding_or_url_safe_is_accepted() -> None:
    data = base64.urlsafe_b64encode(b"\xfb\xff\xfe?").decode().rstrip("=")
    value = {"type": "Base64Encoded", "name": "a.bin", "mimeType": "application/octet-stream", "data": data}
    assert load_attachment(value, None, workspace_id=WORKSPACE).data == b"\xfb\xff\xfe?"


def test_a_blob_of_the_workspace_is_read_and_named_by_its_key(store: LocalBlobStore) -> None:
    key = event_file_key(WORKSPACE, "msg-1", "receipt.pdf")
    store.put(key, PDF, "application/pdf")
    value = {"type": "BlobStorage", "key": key, "mimeType": "application/pdf"}
    assert load_attachment(value, store, workspace_id=WORKSPACE) == Attachment(
        "receipt.pdf", "application/pdf", PDF
    )
    named = {**value, "name": "Your receipt.pdf"}
    assert load_attachment(named, store, workspace_id=WORKSPACE).name == "Your receipt.pdf"


def test_a_value_still_in_its_json_text_is_parsed(store: LocalBlobStore) -> None:
    key = event_file_key(WORKSPACE, "msg-1", "a.txt")
    store.put(key, b"hello", "text/plain")
    text = json.dumps({"type": "BlobStorage", "key": key, "mimeType": "text/plain", "name": "a.txt"})
    assert load_attachment(text, store, workspace_id=WORKSPACE).data == b"hello"


def test_a_blob_of_another_workspace_is_refused(store: LocalBlobStore) -> None:
    key = event_file_key(OTHER_WORKSPACE, "msg-1", "secret.pdf")
    store.put(key, PDF, "application/pdf")
    for forged in (key, f"event-files/{WORKSPACE}/../../{key}", f"emails/{WORKSPACE}/m/body.html"):
        value = {"type": "BlobStorage", "key": forged, "mimeType": "application/pdf"}
        with pytest.raises(InvalidInput):
            load_attachment(value, store, workspace_id=WORKSPACE)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not json", "not a file"),
        (42, "not a file object"),
        (["a"], "not a file object"),
        ({"type": "Url", "mimeType": "text/plain"}, "file type must be"),
        ({"type": "Base64Encoded", "name": "a", "data": "aGk="}, "no mimeType"),
        ({"type": "Base64Encoded", "mimeType": "text/plain", "data": "aGk="}, "no name"),
        ({"type": "Base64Encoded", "name": "a", "mimeType": "text/plain", "data": "@@@"}, "not valid base64"),
        ({"type": "Base64Encoded", "name": "a", "mimeType": "text/plain", "data": 5}, "not valid base64"),
        ({"type": "BlobStorage", "mimeType": "text/plain"}, "no key"),
        ({"type": "BlobStorage", "key": f"event-files/{WORKSPACE}/m/gone", "mimeType": "a/b"}, "not in blob"),
    ],
)
def test_values_that_are_no_usable_file_are_refused_clearly(
    store: LocalBlobStore, value: Any, says: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_attachment(value, store, workspace_id=WORKSPACE, property_name="receipt")
    assert says in raised.value.message and "'receipt'" in raised.value.message
    assert raised.value.field == "attachmentUserProperties"


def test_a_blob_cannot_be_read_with_blob_storage_disabled() -> None:
    value = {"type": "BlobStorage", "key": f"event-files/{WORKSPACE}/m/a.pdf", "mimeType": "application/pdf"}
    with pytest.raises(InvalidInput) as raised:
        load_attachment(value, None, workspace_id=WORKSPACE)
    assert "blob storage is disabled" in raised.value.message
