"""Track events with `files` (Dittofeed §5.1): with blob storage enabled each file is written to blob
storage before the event is acknowledged and the stored event names it in `DFAttachedFiles`; a bad file
is a 400 naming its field and stores nothing; with blob storage disabled files are dropped as before."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import BlobStorageSettings, Settings
from tests.gateway.api.conftest import Tenant
from tests.support.net import free_port
from tests.support.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, s3_server

PDF = b"%PDF-1.7\n\x00\xffreceipt"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    """The app with blob storage enabled: a directory under the data dir, or an S3 server."""
    if request.param == "local":
        blobs = BlobStorageSettings(enabled=True)
    else:
        blobs = BlobStorageSettings(
            enabled=True,
            endpoint=request.getfixturevalue("s3_endpoint"),
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            bucket=f"b-{uuid.uuid4().hex[:12]}",
        )
    with TestClient(create_app(replace(settings, blob_storage=blobs), run_worker=False)) as test_client:
        yield test_client


def _stored(client: TestClient, workspace_id: str) -> list[dict[str, Any]]:
    rows = client.app.state.event_store.query(  # type: ignore[attr-defined]
        "SELECT message_raw FROM user_events_v2 WHERE workspace_id = {w:String} ORDER BY message_id",
        {"w": workspace_id},
    )
    return [json.loads(row[0]) for row in rows]


def _blob(client: TestClient, key: str) -> bytes | None:
    data: bytes | None = client.app.state.blob_store.get(key)  # type: ignore[attr-defined]
    return data


def _file(name: str, data: bytes, mime_type: str = "application/pdf") -> dict[str, str]:
    return {
        "type": "Base64Encoded",
        "name": name,
        "mimeType": mime_type,
        "data": base64.b64encode(data).decode(),
    }


def _post(client: TestClient, tenant: Tenant, path: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"/api/public/apps/{path}", json=body, headers={"authorization": tenant.write_key})


def _track(message_id: str, *files: dict[str, str], **properties: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": "u1", "messageId": message_id, "event": "ORDER_PLACED"}
    return body | {"files": list(files)} | ({"properties": properties} if properties else {})


def test_track_files_are_stored_and_named_in_the_event(client: TestClient, tenant: Tenant) -> None:
    body = _track("m1", _file("receipt.pdf", PDF), _file("logo.png", PNG, "image/png"), orderId="o-9")
    assert _post(client, tenant, "track", body).status_code == 204
    (event,) = _stored(client, tenant.id)
    receipt_key = f"event-files/{tenant.id}/m1/receipt.pdf"
    logo_key = f"event-files/{tenant.id}/m1/logo.png"
    assert event["properties"] == {
        "orderId": "o-9",
        "DFAttachedFiles": {
            "receipt.pdf": {"type": "BlobStorage", "key": receipt_key, "mimeType": "application/pdf"},
            "logo.png": {"type": "BlobStorage", "key": logo_key, "mimeType": "image/png"},
        },
    }
    assert "files" not in event  # the base64 payload is not kept in the event
    assert (_blob(client, receipt_key), _blob(client, logo_key)) == (PDF, PNG)


def test_batch_track_items_store_their_files_under_their_own_message_id(
    client: TestClient, tenant: Tenant
) -> None:
    body = {
        "batch": [
            {"type": "identify", "userId": "u1", "messageId": "b0", "traits": {"plan": "pro"}},
            {"type": "track", **_track("b1", _file("a.pdf", PDF))},
        ]
    }
    assert _post(client, tenant, "batch", body).status_code == 204
    track = next(e for e in _stored(client, tenant.id) if e["type"] == "track")
    key = f"event-files/{tenant.id}/b1/a.pdf"
    assert track["properties"]["DFAttachedFiles"]["a.pdf"]["key"] == key
    assert _blob(client, key) == PDF


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ([{**_file("a.pdf", PDF), "data": "not base64!"}], "body/files/0/data"),
        ([_file("ok.pdf", PDF), {**_file("b.pdf", PDF), "data": "@@@@"}], "body/files/1/data"),
        ([{**_file("a.pdf", PDF), "type": "BlobStorage"}], "body/files/0/type"),
        ([{**_file("a.pdf", PDF), "mimeType": 3}], "body/files/0/mimeType"),
        ([_file("../../emails/x/body.html", PDF)], "body/files/0/name"),
        ([_file("..", PDF)], "body/files/0/name"),
        ([_file("", PDF)], "body/files/0/name"),
    ],
)
def test_a_bad_file_is_400_naming_the_field_and_stores_nothing(
    client: TestClient, tenant: Tenant, files: list[dict[str, Any]], field: str
) -> None:
    response = _post(client, tenant, "track", _track("m1", *files))
    assert response.status_code == 400
    assert response.json()["message"].startswith(field)
    assert _stored(client, tenant.id) == []
    assert _blob(client, f"event-files/{tenant.id}/m1/ok.pdf") is None


def test_a_bad_file_in_a_batch_names_the_item_and_stores_nothing(client: TestClient, tenant: Tenant) -> None:
    body = {
        "batch": [
            {"type": "track", **_track("b1", _file("a.pdf", PDF))},
            {"type": "track", **_track("b2", {**_file("b.pdf", PDF), "data": "%%%"})},
        ]
    }
    response = _post(client, tenant, "batch", body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("body/batch/1/files/0/data")
    assert _stored(client, tenant.id) == [] and _blob(client, f"event-files/{tenant.id}/b1/a.pdf") is None


def test_a_message_id_that_is_no_key_segment_is_refused_with_files(
    client: TestClient, tenant: Tenant
) -> None:
    response = _post(client, tenant, "track", _track("../x", _file("a.pdf", PDF)))
    assert response.status_code == 400 and response.json()["message"].startswith("body/messageId")


def test_files_need_a_valid_write_key(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/public/apps/track",
        json=_track("m1", _file("a.pdf", PDF)),
        headers={"authorization": "Basic " + base64.b64encode(b"nope:nope").decode()},
    )
    assert response.status_code == 401
    assert _blob(client, f"event-files/{tenant.id}/m1/a.pdf") is None


def test_with_blob_storage_disabled_files_are_dropped(settings: Settings, tenant: Tenant) -> None:
    # `tenant` was made through the default client, whose settings have blob storage disabled.
    with TestClient(create_app(settings, run_worker=False)) as client:
        assert _post(client, tenant, "track", _track("m1", {"type": "junk"})).status_code == 204
        (event,) = _stored(client, tenant.id)
        assert "files" not in event and "DFAttachedFiles" not in event["properties"]


def test_unreachable_blob_storage_is_503_and_the_event_is_not_acknowledged(
    settings: Settings, tenant: Tenant
) -> None:
    blobs = BlobStorageSettings(
        enabled=True,
        endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
    with TestClient(create_app(replace(settings, blob_storage=blobs), run_worker=False)) as client:
        response = _post(client, tenant, "track", _track("m1", _file("a.pdf", PDF)))
        assert response.status_code == 503
        assert SECRET_ACCESS_KEY not in response.text
        assert _stored(client, tenant.id) == []
        # An event without files does not need the store.
        assert _post(client, tenant, "track", _track("m2")).status_code == 204
