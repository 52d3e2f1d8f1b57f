"""Segment's webhook destination speaks Dittofeed's wire format: `x-signature` = hex HMAC-SHA1 of the raw
body under the workspace's shared secret (computed here independently), the body stored verbatim and
visible as soon as the 200 is sent, a redelivery stored once, and one tenant's secret useless for
another."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant

PATH = "/api/public/webhooks/segment"
SECRET = "segment-shared-secret"
# Segment's own formatting is kept byte for byte: spacing, key order, escapes and non-ASCII text.
BODY = (
    '{ "type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "seg-1",\n'
    '  "timestamp": "2026-03-01T12:30:00.250Z", "properties": {"total": 42.5, "item": "Brot ✓"},\n'
    '  "context": {"library": {"name": "analytics.js"}}, "note": "caf\\u00e9" }'
).encode()


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def _configure(parent: ParentAccount, workspace_id: str, secret: str = SECRET) -> None:
    response = parent.client.put(
        "/api/admin/settings/data-sources",
        json={"workspaceId": workspace_id, "variant": {"type": "SegmentIO", "sharedSecret": secret}},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 200, response.text


def _deliver(
    client: TestClient,
    body: bytes,
    *,
    workspace_id: str | None,
    signature: str | None,
    path: str = PATH,
    params: dict[str, str] | None = None,
) -> Any:
    headers = {"content-type": "application/json"}
    if workspace_id is not None:
        headers["df-workspace-id"] = workspace_id
    if signature is not None:
        headers["x-signature"] = signature
    return client.post(path, content=body, headers=headers, params=params)


def _stored(client: TestClient, workspace_id: str) -> list[tuple[Any, ...]]:
    rows = client.app.state.event_store.query(  # type: ignore[attr-defined]
        "SELECT message_raw, message_id, toString(event_type), event, user_or_anonymous_id,"
        " toString(event_time), properties FROM user_events_v2 WHERE workspace_id = {w:String}"
        " ORDER BY message_id",
        {"w": workspace_id},
    )
    return [tuple(row) for row in rows]


@pytest.fixture
def configured(parent: ParentAccount, tenant: Tenant) -> Tenant:
    _configure(parent, tenant.id)
    return tenant


@pytest.mark.parametrize("path", [PATH, "/api/webhooks/segment"])
def test_a_signed_delivery_is_stored_verbatim_before_the_200(
    client: TestClient, configured: Tenant, path: str
) -> None:
    response = _deliver(client, BODY, workspace_id=configured.id, signature=_sign(SECRET, BODY), path=path)
    assert (response.status_code, response.content) == (200, b"")
    # No waiting: the row is on disk before the acknowledgement.
    ((raw, message_id, event_type, event, user, event_time, properties),) = _stored(client, configured.id)
    assert raw.encode() == BODY
    assert (message_id, event_type, event, user) == ("seg-1", "track", "Order Completed", "u-1")
    assert event_time == "2026-03-01 12:30:00.250"
    assert json.loads(properties) == {"total": 42.5, "item": "Brot ✓"}


def test_a_redelivery_is_stored_once(client: TestClient, configured: Tenant) -> None:
    for _ in range(3):
        response = _deliver(client, BODY, workspace_id=configured.id, signature=_sign(SECRET, BODY))
        assert response.status_code == 200
    # Segment may retry with the same messageId and a body formatted differently: still the same event.
    compact = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert (
        _deliver(client, compact, workspace_id=configured.id, signature=_sign(SECRET, compact)).status_code
        == 200
    )
    assert [row[0].encode() for row in _stored(client, configured.id)] == [BODY]


def test_distinct_message_ids_are_distinct_events(client: TestClient, configured: Tenant) -> None:
    for message_id in ("a", "b"):
        body = json.dumps(
            {"type": "identify", "anonymousId": "anon", "messageId": message_id, "timestamp": "2026-01-01"}
        ).encode()
        assert (
            _deliver(client, body, workspace_id=configured.id, signature=_sign(SECRET, body)).status_code
            == 200
        )
    assert [row[1:3] for row in _stored(client, configured.id)] == [("a", "identify"), ("b", "identify")]


@pytest.mark.parametrize("where", ["query", "body"])
def test_the_workspace_may_be_named_in_the_query_or_the_body(
    client: TestClient, configured: Tenant, where: str
) -> None:
    message = {"type": "page", "userId": "u", "messageId": "p1", "timestamp": "2026-01-01T00:00:00Z"}
    params = {"workspaceId": configured.id} if where == "query" else None
    if where == "body":
        message["workspaceId"] = configured.id
    body = json.dumps(message).encode()
    response = _deliver(client, body, workspace_id=None, signature=_sign(SECRET, body), params=params)
    assert response.status_code == 200
    assert len(_stored(client, configured.id)) == 1


def test_no_workspace_is_a_400(client: TestClient, configured: Tenant) -> None:
    response = _deliver(client, BODY, workspace_id=None, signature=_sign(SECRET, BODY))
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Missing workspaceId. Try setting the df-workspace-id header."},
    )
    assert _stored(client, configured.id) == []


def test_workspace_id_errors_are_400s(client: TestClient, configured: Tenant, parent: ParentAccount) -> None:
    signature = _sign(SECRET, BODY)
    response = _deliver(client, BODY, workspace_id="not-a-uuid", signature=signature)
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Invalid workspaceId, not a valid UUID."},
    )
    response = _deliver(
        client, BODY, workspace_id=configured.id, signature=signature, params={"workspaceId": parent.id}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Mismatched workspaceIds in request."},
    )
    assert _stored(client, configured.id) == []


def test_an_unconfigured_workspace_is_a_503(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    response = _deliver(client, BODY, workspace_id=tenant.id, signature=_sign(SECRET, BODY))
    assert response.status_code == 503
    _configure(parent, tenant.id)
    parent.client.delete(
        "/api/admin/settings/data-sources",
        params={"workspaceId": tenant.id, "type": "SegmentIO"},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert _deliver(client, BODY, workspace_id=tenant.id, signature=_sign(SECRET, BODY)).status_code == 503
    assert _stored(client, tenant.id) == []


@pytest.mark.parametrize(
    "signature",
    [None, "", _sign("another-secret", BODY), _sign(SECRET, BODY + b" "), _sign(SECRET, BODY).upper()],
)
def test_a_missing_or_wrong_signature_is_a_401(
    client: TestClient, configured: Tenant, signature: str | None
) -> None:
    response = _deliver(client, BODY, workspace_id=configured.id, signature=signature)
    assert response.status_code == 401
    assert _stored(client, configured.id) == []


def test_one_tenants_secret_cannot_write_into_another(client: TestClient, parent: ParentAccount) -> None:
    tenant_a = parent.put_child("Tenant A", "tenant-a")
    tenant_b = parent.put_child("Tenant B", "tenant-b")
    _configure(parent, tenant_a.id, "secret-of-a")
    _configure(parent, tenant_b.id, "secret-of-b")
    signed_by_a = _sign("secret-of-a", BODY)

    assert _deliver(client, BODY, workspace_id=tenant_b.id, signature=signed_by_a).status_code == 401
    # Naming B in the body as well as the header changes nothing: the body is what A signed.
    into_b = json.dumps({**json.loads(BODY), "workspaceId": tenant_b.id}).encode()
    assert (
        _deliver(client, into_b, workspace_id=tenant_b.id, signature=_sign("secret-of-a", into_b)).status_code
        == 401
    )
    assert _stored(client, tenant_b.id) == [] and _stored(client, tenant_a.id) == []

    assert _deliver(client, BODY, workspace_id=tenant_a.id, signature=signed_by_a).status_code == 200
    assert len(_stored(client, tenant_a.id)) == 1 and _stored(client, tenant_b.id) == []


def test_workspaces_that_cannot_receive_events_are_401(
    client: TestClient, parent: ParentAccount, configured: Tenant
) -> None:
    _configure(parent, parent.id)
    response = _deliver(client, BODY, workspace_id=parent.id, signature=_sign(SECRET, BODY))
    assert (response.status_code, response.json()) == (401, {"message": "WorkspaceIneligible"})

    parent.client.delete(
        "/api-l/admin/workspaces/",
        params={"workspaceId": configured.id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    response = _deliver(client, BODY, workspace_id=configured.id, signature=_sign(SECRET, BODY))
    assert (response.status_code, response.json()) == (401, {"message": "WorkspaceIneligible"})
    assert _stored(client, configured.id) == [] and _stored(client, parent.id) == []


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "track", "event": "E", "userId": "u", "timestamp": "2026-01-01"}, "body/messageId"),
        ({"type": "track", "event": "E", "userId": "u", "messageId": "m"}, "body/timestamp"),
        ({"type": "track", "userId": "u", "messageId": "", "timestamp": "2026-01-01"}, "body/messageId"),
        ({"type": "track", "userId": "u", "messageId": 7, "timestamp": "2026-01-01"}, "body/messageId"),
        ({"type": "track", "userId": "u", "messageId": "m", "timestamp": 1767225600}, "body/timestamp"),
        # event_type is a ClickHouse enum derived from `type`: anything else would poison the row.
        ({"userId": "u", "messageId": "m", "timestamp": "2026-01-01"}, "body/type"),
        ({"type": "Track", "userId": "u", "messageId": "m", "timestamp": "2026-01-01"}, "body/type"),
        # Non-string ids would be rendered by ClickHouse in a form the dedupe key cannot predict.
        ({"type": "track", "userId": 17, "messageId": "m", "timestamp": "2026-01-01"}, "body/userId"),
        ({"type": "track", "event": ["E"], "messageId": "m", "timestamp": "2026-01-01"}, "body/event"),
        (["not", "an", "object"], "body"),
    ],
)
def test_schema_violations_are_400s_naming_the_field(
    client: TestClient, configured: Tenant, message: Any, field: str
) -> None:
    body = json.dumps(message).encode()
    response = _deliver(client, body, workspace_id=configured.id, signature=_sign(SECRET, body))
    assert response.status_code == 400
    assert response.json()["message"].startswith(field + " ")
    assert _stored(client, configured.id) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{nope",
        b'{"type":"bogus","type":"track","messageId":"m","timestamp":"t"}',
        b'{"type":"track","messageId":"m","timestamp":"t","x":NaN}',
        b'{"type":"track","messageId":"m","timestamp":"t","x":"\\ud800"}',
        b'{"type":"track","messageId":"m","timestamp":"t","x":"\xff"}',
    ],
)
def test_bodies_clickhouse_would_misread_are_400s(
    client: TestClient, configured: Tenant, body: bytes
) -> None:
    response = _deliver(client, body, workspace_id=configured.id, signature=_sign(SECRET, body))
    assert response.status_code == 400
    assert _stored(client, configured.id) == []


def test_bodies_over_the_limit_are_413(client: TestClient, configured: Tenant) -> None:
    body = json.dumps(
        {"type": "track", "messageId": "m", "timestamp": "t", "blob": "x" * (5 * 1024 * 1024)}
    ).encode()
    response = _deliver(client, body, workspace_id=configured.id, signature=_sign(SECRET, body))
    assert response.status_code == 413
    assert _stored(client, configured.id) == []
