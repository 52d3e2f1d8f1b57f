"""`/api/admin/groups/*` answer from the group calls: current members, latest assignment wins."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant, admin_key_for


def _group(client: TestClient, tenant: Tenant, user: str, group: str, message_id: str, **extra: Any) -> None:
    body = {"userId": user, "groupId": group, "messageId": message_id, **extra}
    response = client.post("/api/public/apps/group", json=body, headers={"authorization": tenant.write_key})
    assert response.status_code == 204, response.text


def _get(client: TestClient, key: str, path: str, **query: Any) -> Any:
    return client.get(f"/api/admin/groups/{path}", params=query, headers={"authorization": f"Bearer {key}"})


def test_members_and_memberships(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    _group(client, tenant, "ann", "team-1", "g1")
    _group(client, tenant, "bob", "team-1", "g2")
    _group(client, tenant, "ann", "team-2", "g3")
    users = _get(client, parent.admin_key, "users", workspaceId=tenant.id, groupId="team-1")
    assert (users.status_code, sorted(users.json()["users"])) == (200, ["ann", "bob"])
    groups = _get(client, parent.admin_key, "user-groups", workspaceId=tenant.id, userId="ann")
    assert sorted(groups.json()["groups"]) == ["team-1", "team-2"]


def test_a_later_unassignment_removes_the_member(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    _group(client, tenant, "ann", "team-1", "g1")
    _group(client, tenant, "bob", "team-1", "g2")
    _group(client, tenant, "ann", "team-1", "g3", assigned=False)
    users = _get(client, parent.admin_key, "users", workspaceId=tenant.id, groupId="team-1").json()
    assert users == {"users": ["bob"]}
    assert _get(client, parent.admin_key, "user-groups", workspaceId=tenant.id, userId="ann").json() == {
        "groups": []
    }


def test_pages_most_recent_first(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    for index, user in enumerate(["a", "b", "c"]):
        _group(client, tenant, user, "team", f"g{index}")
    pages = [
        _get(
            client, parent.admin_key, "users", workspaceId=tenant.id, groupId="team", limit=2, offset=offset
        ).json()
        for offset in (0, 2)
    ]
    assert pages == [{"users": ["c", "b"]}, {"users": ["a"]}]


def test_groups_are_per_workspace(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    other = parent.put_child("Tenant B", "tenant-b")
    _group(client, other, "ann", "team-1", "g1")
    assert _get(client, parent.admin_key, "users", workspaceId=tenant.id, groupId="team-1").json() == {
        "users": []
    }
    sibling_key = admin_key_for(client, other.id)
    assert _get(client, sibling_key, "users", workspaceId=tenant.id, groupId="team-1").status_code == 401


def test_missing_group_id_is_a_400_naming_it(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    response = _get(client, parent.admin_key, "users", workspaceId=tenant.id)
    assert response.status_code == 400 and response.json()["message"].startswith("querystring/groupId")
