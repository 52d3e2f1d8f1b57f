"""`GET /api-l/admin/audit-log`: a change made with an admin key is logged with that key, the caller's
address and the values before and after; a parent reads its children's entries, a child's key never
its parent's, another parent nothing; filters and cursor paging; bad parameters are a 400 naming the
field; no secret is ever in the log."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.models import AdminApiKey
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for, make_parent

PATH = "/api-l/admin/audit-log"
TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}


class Segments(AdminApi):
    prefix = "/api/admin/segments"

    def put(self, **body: Any) -> dict[str, Any]:
        response = self.call("PUT", **body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def _log(client: TestClient, key: str, **query: Any) -> dict[str, Any]:
    response = client.get(PATH, params=query, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _key_id(client: TestClient, workspace_id: str) -> str:
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        key_id: str = session.scalars(
            select(AdminApiKey.id).where(AdminApiKey.workspace_id == workspace_id)
        ).one()
        return key_id


def test_an_admin_key_change_is_logged_with_the_key_the_address_and_the_values(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    segments = Segments(client, parent.admin_key, tenant.id)
    created = segments.put(name="Paid", definition=TRAIT)
    segments.put(id=created["id"], name="Paid users", definition=TRAIT)

    body = _log(client, parent.admin_key, resourceType="Segment", resourceId=created["id"])
    updated, inserted = body["entries"]
    assert body["nextCursor"] is None
    for entry in (updated, inserted):
        assert set(entry) == {
            "id",
            "workspaceId",
            "actorType",
            "actorId",
            "action",
            "resourceType",
            "resourceId",
            "before",
            "after",
            "ip",
            "createdAt",
        }
        assert (entry["workspaceId"], entry["actorType"]) == (tenant.id, "AdminApiKey")
        assert entry["actorId"] == _key_id(client, parent.id)
        assert (entry["action"], entry["ip"]) == ("admin:segments:upsert", "testclient")
        assert entry["createdAt"].endswith("Z")
    assert inserted["before"] is None
    assert (inserted["after"]["name"], inserted["after"]["definition"]) == ("Paid", TRAIT)
    assert updated["before"]["name"] == "Paid" and updated["after"]["name"] == "Paid users"


def test_a_parent_reads_its_childrens_entries_and_a_child_never_its_parents(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    Segments(client, parent.admin_key, tenant.id).put(name="Child's", definition=TRAIT)
    # A Workspace row is logged under itself, so the parent's own entry comes from its own segment.
    Segments(client, parent.admin_key, parent.id).put(name="Parent's", definition=TRAIT)

    seen_by_parent = {entry["workspaceId"] for entry in _log(client, parent.admin_key, limit=500)["entries"]}
    assert seen_by_parent == {parent.id, tenant.id}

    child_key = admin_key_for(client, tenant.id)
    seen_by_child = _log(client, child_key, limit=500)["entries"]
    assert seen_by_child and {entry["workspaceId"] for entry in seen_by_child} == {tenant.id}
    refused = client.get(
        PATH, params={"workspaceId": parent.id}, headers={"authorization": f"Bearer {child_key}"}
    )
    assert refused.status_code == 401

    other = make_parent(client, "Other SaaS")
    assert _log(client, other.admin_key)["entries"] == []
    refused = client.get(
        PATH, params={"workspaceId": tenant.id}, headers={"authorization": f"Bearer {other.admin_key}"}
    )
    assert refused.status_code == 401


def test_filters_and_cursor(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    second = parent.put_child("Tenant B", "tenant-b")
    Segments(client, parent.admin_key, tenant.id).put(name="A", definition=TRAIT)
    Segments(client, parent.admin_key, second.id).put(name="B", definition=TRAIT)
    key = parent.admin_key

    only_b = _log(client, key, workspaceId=second.id, resourceType="Segment", action="admin:segments:upsert")
    assert [entry["after"]["name"] for entry in only_b["entries"]] == ["B"]
    children = _log(client, key, action="workspaces:put_child", resourceType="Workspace")["entries"]
    assert {entry["resourceId"] for entry in children} == {tenant.id, second.id}
    assert _log(client, key, actorType="Member")["entries"] == []
    assert _log(client, key, actorId=_key_id(client, parent.id), limit=500)["entries"]
    assert _log(client, key, since="2999-01-01T00:00:00Z")["entries"] == []
    assert _log(client, key, until="2000-01-01")["entries"] == []

    every = _log(client, key, limit=500)["entries"]
    assert len(every) > 3
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = _log(client, key, limit=2, **({"cursor": cursor} if cursor else {}))
        paged += body["entries"]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert [entry["id"] for entry in paged] == [entry["id"] for entry in every]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "next"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"until": "soon"}, "until"),
        ({"actorType": "Robot"}, "actorType"),
        ({"workspaceId": "not-a-uuid"}, "workspaceId"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(
    client: TestClient, parent: ParentAccount, query: dict[str, str], field: str
) -> None:
    response = client.get(PATH, params=query, headers={"authorization": f"Bearer {parent.admin_key}"})
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_a_request_without_a_valid_key_is_refused(client: TestClient, parent: ParentAccount) -> None:
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers={"authorization": "Bearer " + "0" * 64}).status_code == 401


def test_no_secret_reaches_the_log(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    _, write_key = base64.b64decode(tenant.write_key.removeprefix("Basic ")).decode().split(":", 1)
    response = client.get(
        PATH, params={"limit": 500}, headers={"authorization": f"Bearer {parent.admin_key}"}
    )
    secrets = response.json()["entries"]
    assert any(entry["resourceType"] == "Secret" for entry in secrets)  # the child's write key was logged
    assert write_key not in response.text
    assert parent.admin_key not in response.text
