"""`/api/admin/settings/data-sources` speaks Dittofeed's wire format and keeps tenants apart: a parent's
admin key opens its children, a child's key never its parent or a sibling."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.credentials import create_admin_api_key
from tests.gateway.api.conftest import ParentAccount, Tenant, make_parent

PATH = "/api/admin/settings/data-sources"
SECRET = "a-shared-secret"


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _put(client: TestClient, key: str, workspace_id: str, secret: Any = SECRET) -> Any:
    body = {"workspaceId": workspace_id, "variant": {"type": "SegmentIO", "sharedSecret": secret}}
    return client.put(PATH, json=body, headers=_auth(key))


def _get(client: TestClient, key: str, workspace_id: str) -> Any:
    return client.get(PATH, params={"workspaceId": workspace_id}, headers=_auth(key))


def _delete(client: TestClient, key: str, workspace_id: str) -> Any:
    return client.delete(PATH, params={"workspaceId": workspace_id, "type": "SegmentIO"}, headers=_auth(key))


def _child_admin_key(client: TestClient, workspace_id: str) -> str:
    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        return create_admin_api_key(session, workspace_id, "child-backend").api_key


def _configured(client: TestClient, parent: ParentAccount, workspace_id: str) -> list[str]:
    response = _get(client, parent.admin_key, workspace_id)
    assert response.status_code == 200, response.text
    configured: list[str] = response.json()["dataSourceConfigurations"]
    return configured


def test_put_get_delete_round_trip(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    assert _get(client, parent.admin_key, tenant.id).json() == {"dataSourceConfigurations": []}

    created = _put(client, parent.admin_key, tenant.id, "first-secret")
    assert created.status_code == 200
    body = created.json()
    uuid.UUID(body["id"])
    assert body == {
        "id": body["id"],
        "workspaceId": tenant.id,
        "variant": {"type": "SegmentIO", "sharedSecret": "first-secret"},
    }

    listed = _get(client, parent.admin_key, tenant.id)
    assert listed.json() == {"dataSourceConfigurations": ["SegmentIO"]}
    assert "first-secret" not in listed.text

    replaced = _put(client, parent.admin_key, tenant.id, "second-secret")
    assert replaced.json()["id"] == body["id"]

    for _ in range(2):  # removing an absent configuration is not an error, as upstream
        deleted = _delete(client, parent.admin_key, tenant.id)
        assert (deleted.status_code, deleted.content) == (204, b"")
    assert _configured(client, parent, tenant.id) == []


def test_the_new_secret_replaces_the_old_one_for_signatures(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    body = b'{"type":"track","event":"E","userId":"u","messageId":"m1","timestamp":"2026-01-01T00:00:00Z"}'

    def deliver(secret: str) -> int:
        signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        headers = {"df-workspace-id": tenant.id, "x-signature": signature}
        status: int = client.post("/api/public/webhooks/segment", content=body, headers=headers).status_code
        return status

    _put(client, parent.admin_key, tenant.id, "old")
    _put(client, parent.admin_key, tenant.id, "new")
    assert deliver("old") == 401
    assert deliver("new") == 200


def test_a_parent_configures_itself(client: TestClient, parent: ParentAccount) -> None:
    assert _put(client, parent.admin_key, parent.id).status_code == 200
    assert _configured(client, parent, parent.id) == ["SegmentIO"]


def test_a_childs_key_opens_only_its_own_workspace(client: TestClient, parent: ParentAccount) -> None:
    child_a = parent.put_child("Tenant A", "tenant-a")
    child_b = parent.put_child("Tenant B", "tenant-b")
    _put(client, parent.admin_key, child_b.id, "b-secret")
    key_a = _child_admin_key(client, child_a.id)

    assert _put(client, key_a, child_a.id).status_code == 200
    assert _get(client, key_a, child_a.id).json() == {"dataSourceConfigurations": ["SegmentIO"]}
    for target in (child_b.id, parent.id):
        for response in (
            _put(client, key_a, target),
            _get(client, key_a, target),
            _delete(client, key_a, target),
        ):
            assert (response.status_code, response.json()) == (401, {"message": "API key not valid"})
    assert _configured(client, parent, child_b.id) == ["SegmentIO"]
    assert _configured(client, parent, parent.id) == []


def test_another_parents_key_cannot_touch_these_children(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    other = make_parent(client, "Other SaaS")
    assert _put(client, other.admin_key, tenant.id).status_code == 401
    assert _get(client, other.admin_key, tenant.id).status_code == 401
    assert _configured(client, parent, tenant.id) == []


def test_admin_authentication_errors(client: TestClient, tenant: Tenant) -> None:
    body = {"workspaceId": tenant.id, "variant": {"type": "SegmentIO", "sharedSecret": "x"}}
    response = client.put(PATH, json=body)
    assert (response.status_code, response.json()) == (401, {"message": "No authorization header"})
    response = client.put(PATH, json=body, headers=_auth("0" * 64))
    assert (response.status_code, response.json()) == (401, {"message": "API key not valid"})


def test_a_tombstoned_child_cannot_be_configured(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    client.delete(
        "/api-l/admin/workspaces/", params={"workspaceId": tenant.id}, headers=_auth(parent.admin_key)
    )
    assert _put(client, parent.admin_key, tenant.id).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variant": {"type": "SegmentIO", "sharedSecret": "x"}}, "body/workspaceId"),
        ({"workspaceId": "{ws}"}, "body/variant"),
        ({"workspaceId": "{ws}", "variant": {"type": "Postgres", "sharedSecret": "x"}}, "body/variant/type"),
        ({"workspaceId": "{ws}", "variant": {"type": "SegmentIO"}}, "body/variant/sharedSecret"),
        (
            {"workspaceId": "{ws}", "variant": {"type": "SegmentIO", "sharedSecret": ""}},
            "body/variant/sharedSecret",
        ),
        (
            {"workspaceId": "{ws}", "variant": {"type": "SegmentIO", "sharedSecret": 7}},
            "body/variant/sharedSecret",
        ),
        (
            {"workspaceId": "{ws}", "variant": {"type": "SegmentIO", "sharedSecret": "\ud800"}},
            "body/variant/sharedSecret",
        ),
        ({"workspaceId": 7, "variant": {"type": "SegmentIO", "sharedSecret": "x"}}, "body/workspaceId"),
    ],
)
def test_put_schema_violations_are_400s_naming_the_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    if body.get("workspaceId") == "{ws}":
        body = {**body, "workspaceId": tenant.id}
    # Encoded by hand (ASCII escapes): a lone surrogate is legal in a JSON escape but not in UTF-8.
    content = json.dumps(body).encode()
    response = client.put(
        PATH, content=content, headers={**_auth(parent.admin_key), "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith(field + " ")
    assert _configured(client, parent, tenant.id) == []


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("GET", {}, "querystring/workspaceId"),
        ("DELETE", {"workspaceId": "{ws}"}, "querystring/type"),
        ("DELETE", {"workspaceId": "{ws}", "type": "Postgres"}, "querystring/type"),
    ],
)
def test_query_violations_are_400s_naming_the_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant, method: str, params: dict[str, str], field: str
) -> None:
    params = {k: tenant.id if v == "{ws}" else v for k, v in params.items()}
    response = client.request(method, PATH, params=params, headers=_auth(parent.admin_key))
    assert response.status_code == 400
    assert response.json()["message"].startswith(field + " ")


def test_workspace_id_errors_are_dittofeeds(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    response = _get(client, parent.admin_key, "not-a-uuid")
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Invalid workspaceId, not a valid UUID."},
    )
    response = client.get(
        PATH,
        params={"workspaceId": tenant.id},
        headers={**_auth(parent.admin_key), "df-workspace-id": parent.id},
    )
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Mismatched workspaceIds in request."},
    )
    response = client.put(PATH, content=b"{nope", headers=_auth(parent.admin_key))
    assert response.status_code == 400


def test_the_shared_secret_is_never_logged(
    client: TestClient, parent: ParentAccount, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "never-in-a-log-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    _put(client, parent.admin_key, tenant.id, secret)
    _get(client, parent.admin_key, tenant.id)
    body = b'{"type":"track","event":"E","userId":"u","messageId":"m1","timestamp":"2026-01-01T00:00:00Z"}'
    for signature in ("bad", hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()):
        client.post(
            "/api/public/webhooks/segment",
            content=body,
            headers={"df-workspace-id": tenant.id, "x-signature": signature},
        )
    _delete(client, parent.admin_key, tenant.id)
    client.post("/api/public/webhooks/segment", content=body, headers={"df-workspace-id": tenant.id})
    assert caplog.records  # the capture is live: the 503 above is logged
    assert secret not in caplog.text
