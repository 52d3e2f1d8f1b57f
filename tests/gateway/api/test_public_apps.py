"""The public apps API speaks Dittofeed's wire format: write-key header, bodies, statuses."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant


def _stored(client: TestClient, workspace_id: str) -> list[dict[str, Any]]:
    rows = client.app.state.event_store.query(  # type: ignore[attr-defined]
        "SELECT message_raw FROM user_events_v2 WHERE workspace_id = {w:String} ORDER BY message_raw",
        {"w": workspace_id},
    )
    return [json.loads(row[0]) for row in rows]


def _post(client: TestClient, path: str, key: str, body: Any) -> Any:
    return client.post(f"/api/public/apps/{path}", json=body, headers={"authorization": key})


def test_identify_is_stored_with_dittofeeds_defaults(client: TestClient, tenant: Tenant) -> None:
    response = _post(client, "identify", tenant.write_key, {"userId": "u1", "messageId": "m1", "custom": 1})
    assert (response.status_code, response.content) == (204, b"")
    (stored,) = _stored(client, tenant.id)
    assert stored["type"] == "identify" and stored["traits"] == {} and stored["custom"] == 1
    assert stored["timestamp"].endswith("Z")


@pytest.mark.parametrize("path", ["track", "page", "screen"])
def test_event_types_default_properties(client: TestClient, tenant: Tenant, path: str) -> None:
    body = {"anonymousId": "a1", "messageId": "m1", "event": "E", "timestamp": "2026-01-01T00:00:00Z"}
    assert _post(client, path, tenant.write_key, body).status_code == 204
    (stored,) = _stored(client, tenant.id)
    assert (stored["type"], stored["properties"], stored["timestamp"]) == (path, {}, "2026-01-01T00:00:00Z")


def test_any_scheme_word_is_accepted(client: TestClient, tenant: Tenant) -> None:
    key = "Bearer " + tenant.write_key.split(" ", 1)[1]
    assert _post(client, "identify", key, {"userId": "u1", "messageId": "m1"}).status_code == 204


def test_a_repeated_message_id_is_stored_once(client: TestClient, tenant: Tenant) -> None:
    body = {"userId": "u1", "messageId": "same", "event": "ORDER_PLACED"}
    for _ in range(3):
        assert _post(client, "track", tenant.write_key, body).status_code == 204
    assert _post(client, "batch", tenant.write_key, {"batch": [{"type": "track", **body}]}).status_code == 204
    assert len(_stored(client, tenant.id)) == 1


def test_group_expands_into_assignment_events(client: TestClient, tenant: Tenant) -> None:
    body = {"userId": "u1", "messageId": "g1", "groupId": "team-7", "traits": {"plan": "pro"}}
    assert _post(client, "group", tenant.write_key, body).status_code == 204
    stored = {(m["type"], m.get("event"), m["userId"]): m for m in _stored(client, tenant.id)}
    assert stored[("track", "DFUserGroupAssignment", "u1")]["properties"] == {
        "groupId": "team-7",
        "assigned": True,
    }
    assert stored[("track", "DFGroupUserAssignment", "team-7")]["properties"] == {
        "userId": "u1",
        "assigned": True,
    }
    assert stored[("identify", None, "team-7")]["traits"] == {"plan": "pro"}
    assert {m["messageId"] for m in stored.values()} == {"g1"}


def test_batch_merges_the_batch_context_under_each_item(client: TestClient, tenant: Tenant) -> None:
    body = {
        "context": {"app": "web", "locale": "en"},
        "batch": [
            {"type": "identify", "userId": "u1", "messageId": "b1", "traits": {"a": 1}},
            {"type": "track", "userId": "u1", "messageId": "b2", "event": "E", "context": {"locale": "fr"}},
        ],
    }
    assert _post(client, "batch", tenant.write_key, body).status_code == 204
    contexts = {m["messageId"]: m["context"] for m in _stored(client, tenant.id)}
    assert contexts == {"b1": {"app": "web", "locale": "en"}, "b2": {"app": "web", "locale": "fr"}}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("track", {"userId": "u1", "messageId": "m1"}, "body/event"),
        ("identify", {"userId": "u1"}, "body/messageId"),
        ("identify", {"messageId": "m1"}, "body"),
        ("identify", {"userId": 7, "messageId": "m1"}, "body/userId"),
        ("group", {"userId": "u1", "messageId": "m1"}, "body/groupId"),
        (
            "batch",
            {
                "batch": [
                    {"type": "track", "userId": "u", "messageId": "1", "event": "E"},
                    {"type": "track", "userId": "u", "messageId": "2"},
                ]
            },
            "body/batch/1/event",
        ),
        ("batch", {"batch": [{"type": "alias", "userId": "u", "messageId": "1"}]}, "body/batch/0"),
        ("batch", {"batch": "nope"}, "body/batch"),
    ],
)
def test_schema_violations_are_400s_naming_the_field(
    client: TestClient, tenant: Tenant, path: str, body: Any, field: str
) -> None:
    response = _post(client, path, tenant.write_key, body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(field + " ")
    assert _stored(client, tenant.id) == []


def test_malformed_json_is_a_400(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/public/apps/identify", content=b"{not json", headers={"authorization": tenant.write_key}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_missing_authorization_is_a_400(client: TestClient) -> None:
    response = client.post("/api/public/apps/identify", json={"userId": "u1", "messageId": "m1"})
    assert response.status_code == 400
    assert "authorization" in response.json()["message"]


def test_wrong_write_keys_are_401(client: TestClient, tenant: Tenant) -> None:
    secret_id = base64.b64decode(tenant.write_key.split(" ")[1]).decode().split(":")[0]
    forged = "Basic " + base64.b64encode(f"{secret_id}:0000000000000000".encode()).decode()
    unknown = "Basic " + base64.b64encode(f"{uuid.uuid4()}:0000000000000000".encode()).decode()
    for key in (forged, unknown, "Basic !!!", "garbage"):
        response = _post(client, "identify", key, {"userId": "u1", "messageId": "m1"})
        assert (response.status_code, response.json()) == (401, {"message": "InvalidWriteKey"})
    response = _post(client, "track", forged, {"userId": "u1", "messageId": "m1", "event": "E"})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid write key."})


def test_parents_and_tombstoned_workspaces_cannot_receive_events(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    parent_key = client.get(
        "/api-l/admin/workspaces/",
        params={"workspaceId": parent.id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    ).json()["writeKey"]
    response = _post(client, "identify", parent_key, {"userId": "u1", "messageId": "m1"})
    assert (response.status_code, response.json()) == (401, {"message": "WorkspaceIneligible"})
    client.delete(
        "/api-l/admin/workspaces/",
        params={"workspaceId": tenant.id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    response = _post(client, "identify", tenant.write_key, {"userId": "u1", "messageId": "m2"})
    assert (response.status_code, response.json()) == (401, {"message": "WorkspaceIneligible"})


def test_bodies_over_the_limit_are_413(client: TestClient, tenant: Tenant) -> None:
    big = {"userId": "u1", "messageId": "m1", "traits": {"blob": "x" * (5 * 1024 * 1024)}}
    response = _post(client, "identify", tenant.write_key, big)
    assert response.status_code == 413
    assert "too large" in response.json()["message"]
    assert _stored(client, tenant.id) == []


def test_alias_is_not_implemented_like_upstream(client: TestClient, tenant: Tenant) -> None:
    response = _post(client, "alias", tenant.write_key, {"userId": "u1", "previousId": "a", "messageId": "m"})
    assert (response.status_code, response.json()) == (400, {"message": "Not yet implemented."})


def test_unknown_apps_path_is_404(client: TestClient, tenant: Tenant) -> None:
    assert _post(client, "teleport", tenant.write_key, {}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b'{"userId":"u1","messageId":"m1","event":"E","properties":{"x":NaN}}',
        b'{"userId":"u1","messageId":"m1","event":"E","properties":{"x":1e999}}',
        b'{"userId":"u1","messageId":"m1","event":"E","properties":{"x":"\\ud800"}}',
    ],
    ids=["nan", "overflow", "lone-surrogate"],
)
def test_values_clickhouse_cannot_read_back_are_400(client: TestClient, tenant: Tenant, body: bytes) -> None:
    response = client.post(
        "/api/public/apps/track",
        content=body,
        headers={"authorization": tenant.write_key, "content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["message"].startswith("body")
    assert _stored(client, tenant.id) == []


def test_an_unknown_field_named_event_on_an_identify_is_stored_not_a_503(
    client: TestClient, tenant: Tenant
) -> None:
    # Found by the fuzzer: the dedup key took the raw `event` field, and a list is unhashable.
    events: tuple[object, ...] = ([], {"a": 1}, 5)
    for event in events:
        body = {"userId": "u", "messageId": str(uuid.uuid4()), "traits": {"plan": "pro"}, "event": event}
        assert _post(client, "identify", tenant.write_key, body).status_code == 204
