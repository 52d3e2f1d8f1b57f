"""`GET /api/admin/resources`: ids and names of the asked-for Declarative resources, ordered by name."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant, admin_key_for

TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
MANUAL = {"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []}


def _get(client: TestClient, key: str, workspace_id: str, **query: Any) -> Any:
    return client.get(
        "/api/admin/resources",
        params={"workspaceId": workspace_id, **query},
        headers={"authorization": f"Bearer {key}"},
    )


def _put_segment(client: TestClient, key: str, workspace_id: str, name: str, definition: Any) -> str:
    response = client.put(
        "/api/admin/segments",
        json={"workspaceId": workspace_id, "name": name, "definition": definition},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    segment_id: str = response.json()["id"]
    return segment_id


def test_lists_what_is_asked_for(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    key = parent.admin_key
    zeta = _put_segment(client, key, tenant.id, "zeta", TRAIT)
    alpha = _put_segment(client, key, tenant.id, "alpha", TRAIT)
    _put_segment(client, key, tenant.id, "manual", MANUAL)  # NotStarted: not offered
    response = _get(
        client,
        key,
        tenant.id,
        segments="true",
        userProperties="true",
        subscriptionGroups="true",
        messageTemplates="true",
        journeys="true",
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"segments", "userProperties", "subscriptionGroups", "messageTemplates"}
    assert body["segments"] == [{"id": alpha, "name": "alpha"}, {"id": zeta, "name": "zeta"}]
    names = [p["name"] for p in body["userProperties"]]
    assert names == sorted(names) and {"id", "email"} <= set(names)
    assert sorted(g["channel"] for g in body["subscriptionGroups"]) == ["Email", "Sms"]
    assert [(t["name"], t["channel"]) for t in body["messageTemplates"]] == [("Welcome Email", "Email")]
    assert all(set(g) == {"id", "name", "channel"} for g in body["subscriptionGroups"])


def test_nothing_asked_nothing_listed(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    assert _get(client, parent.admin_key, tenant.id).json() == {}
    assert _get(client, parent.admin_key, tenant.id, segments="false").json() == {}
    response = _get(client, parent.admin_key, tenant.id, segments="maybe")
    assert response.status_code == 400 and response.json()["message"].startswith("querystring/segments ")


def test_a_childs_key_sees_only_its_own(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    sibling = parent.put_child("Sibling", "sibling")
    _put_segment(client, parent.admin_key, sibling.id, "theirs", TRAIT)
    key = admin_key_for(client, tenant.id)
    assert _get(client, key, sibling.id, segments="true").status_code == 401
    assert _get(client, key, tenant.id, segments="true").json() == {"segments": []}
