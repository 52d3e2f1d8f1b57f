"""Blob storage: the local directory and S3 (a real S3-protocol server) keep the same contract, and no
key reaches outside its directory or bucket prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from engine.blob_storage import (
    LOCAL_BLOB_DIR,
    BlobStore,
    InvalidBlobKey,
    LocalBlobStore,
    check_key,
    open_blob_store,
)
from engine.blob_storage_s3 import S3BlobStore
from engine.errors import Conflict, InvalidInput, Unavailable
from tests.support.net import free_port
from tests.support.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, s3_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


def _s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def _s3_store(endpoint: str, bucket: str | None = None) -> S3BlobStore:
    store = open_blob_store(
        enabled=True,
        data_dir=Path("/nonexistent"),
        endpoint=endpoint,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        bucket=bucket or f"b-{uuid.uuid4().hex[:12]}",
    )
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        local = open_blob_store(enabled=True, data_dir=tmp_path)
        assert isinstance(local, LocalBlobStore)
        return local
    return _s3_store(request.getfixturevalue("s3_endpoint"))


def test_put_then_get_returns_the_same_bytes(store: BlobStore) -> None:
    data = bytes(range(256)) * 10
    store.put("event-files/ws-1/msg-1/receipt.pdf", data, "application/pdf")
    assert store.get("event-files/ws-1/msg-1/receipt.pdf") == data


def test_a_missing_key_reads_as_none(store: BlobStore) -> None:
    assert store.get("event-files/ws-1/never/written.txt") is None


def test_put_replaces_the_previous_bytes(store: BlobStore) -> None:
    store.put("emails/ws-1/m/body.html", b"<p>old</p>", "text/html")
    store.put("emails/ws-1/m/body.html", b"<p>new</p>", "text/html")
    assert store.get("emails/ws-1/m/body.html") == b"<p>new</p>"


def test_empty_blobs_and_unicode_keys_are_kept(store: BlobStore) -> None:
    store.put("event-files/ws/m/empty", b"", "application/octet-stream")
    store.put("event-files/ws/m/résumé naïve.txt", b"x", "text/plain")
    assert store.get("event-files/ws/m/empty") == b""
    assert store.get("event-files/ws/m/résumé naïve.txt") == b"x"


def test_keys_differing_only_in_a_segment_are_distinct(store: BlobStore) -> None:
    store.put("event-files/ws-a/m/f", b"a", "text/plain")
    store.put("event-files/ws-b/m/f", b"b", "text/plain")
    assert (store.get("event-files/ws-a/m/f"), store.get("event-files/ws-b/m/f")) == (b"a", b"b")


HOSTILE_KEYS = [
    "../outside",
    "event-files/../../outside",
    "event-files/ws/..",
    "event-files/./x",
    "/etc/passwd",
    "event-files//x",
    "event-files/x/",
    "event-files\\..\\x",
    "event-files/x\x00.txt",
    "event-files/x\n",
    "",
    "a/" + "x" * 201,
    "x/" * 600,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused_by_every_store(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        store.put(key, b"x", "text/plain")
    with pytest.raises(InvalidBlobKey):
        store.get(key)


def test_a_refused_key_is_a_client_error_naming_the_key() -> None:
    with pytest.raises(InvalidInput) as raised:
        check_key("../x")
    assert raised.value.field == "key"


def test_nothing_is_written_outside_the_local_directory(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    for key in HOSTILE_KEYS:
        with pytest.raises(InvalidBlobKey):
            store.put(key, b"escaped", "text/plain")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_a_symlink_inside_the_directory_does_not_lead_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store = LocalBlobStore(tmp_path / "blobs")
    (tmp_path / "blobs" / "link").symlink_to(outside)
    with pytest.raises(InvalidBlobKey):
        store.get("link/secret.txt")
    with pytest.raises(InvalidBlobKey):
        store.put("link/planted.txt", b"x", "text/plain")
    assert not (outside / "planted.txt").exists()


def test_local_blobs_are_plain_files_under_the_data_dir(tmp_path: Path) -> None:
    store = open_blob_store(enabled=True, data_dir=tmp_path)
    assert store is not None
    store.put("emails/ws/m/body.html", b"<p>hi</p>", "text/html")
    assert (tmp_path / LOCAL_BLOB_DIR / "emails" / "ws" / "m" / "body.html").read_bytes() == b"<p>hi</p>"
    assert [p.name for p in (tmp_path / LOCAL_BLOB_DIR / "emails" / "ws" / "m").iterdir()] == ["body.html"]


def test_local_store_refuses_a_key_below_another_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a/b", b"x", "text/plain")
    with pytest.raises(Conflict):
        store.put("a/b/c", b"y", "text/plain")
    assert store.get("a/b/c") is None and store.get("a") is None


def test_disabled_blob_storage_opens_nothing(tmp_path: Path) -> None:
    assert open_blob_store(enabled=False, data_dir=tmp_path, endpoint="http://127.0.0.1:1") is None
    assert not (tmp_path / LOCAL_BLOB_DIR).exists()


def test_s3_creates_its_bucket_and_stores_objects_with_their_content_type(s3_endpoint: str) -> None:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    store = _s3_store(s3_endpoint, bucket)
    store.put("emails/ws/m/body.html", b"<p>hi</p>", "text/html; charset=utf-8")
    stored = _s3_client(s3_endpoint).get_object(Bucket=bucket, Key="emails/ws/m/body.html")
    assert stored["ContentType"] == "text/html; charset=utf-8"
    assert stored["Body"].read() == b"<p>hi</p>"
    _s3_store(s3_endpoint, bucket).ensure_bucket()  # an existing bucket is reused, not an error


def test_an_unreachable_s3_endpoint_is_unavailable_not_a_crash() -> None:
    store = S3BlobStore(
        bucket="b",
        endpoint=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
    with pytest.raises(Unavailable) as raised:
        store.put("k", b"x", "text/plain")
    assert SECRET_ACCESS_KEY not in raised.value.message
    with pytest.raises(Unavailable):
        store.get("k")


def test_a_bucket_removed_behind_the_stores_back_is_created_again(s3_endpoint: str) -> None:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    store = _s3_store(s3_endpoint, bucket)
    _s3_client(s3_endpoint).delete_bucket(Bucket=bucket)
    store.put("k/v", b"x", "text/plain")
    assert store.get("k/v") == b"x"


def test_s3_down_at_start_up_is_not_fatal_and_the_bucket_comes_with_the_first_put() -> None:
    port = free_port()
    store = _s3_store(f"http://127.0.0.1:{port}")  # nothing listens yet: opening still succeeds
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        store.put("event-files/ws/m/a.txt", b"late", "text/plain")
        assert store.get("event-files/ws/m/a.txt") == b"late"
    finally:
        server.stop()
