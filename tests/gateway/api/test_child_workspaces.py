"""`/api-l/admin/workspaces*`: a parent manages its children with its admin API key, and no key opens
a workspace outside its own subtree."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant, make_parent


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_put_child_returns_dittofeeds_resource(client: TestClient, parent: ParentAccount) -> None:
    body = {"workspaceId": parent.id, "name": "Tenant A", "externalId": "tenant-a", "domain": "tenant-a.com"}
    first = client.put("/api-l/admin/workspaces/child", json=body, headers=_auth(parent.admin_key))
    again = client.put("/api-l/admin/workspaces/child", json=body, headers=_auth(parent.admin_key))
    assert first.status_code == again.status_code == 200
    resource = first.json()
    assert resource == again.json()
    assert {k: resource[k] for k in ("name", "externalId", "type", "status", "domain")} == {
        "name": "Tenant A",
        "externalId": "tenant-a",
        "type": "Child",
        "status": "Active",
        "domain": "tenant-a.com",
    }
    secret_id, value = base64.b64decode(resource["writeKey"].removeprefix("Basic ")).decode().split(":")
    assert len(value) == 16 and len(secret_id) == 36


def test_put_child_errors_keep_dittofeeds_typed_bodies(client: TestClient, parent: ParentAccount) -> None:
    parent.put_child("Tenant A", "tenant-a")
    clash = {"workspaceId": parent.id, "name": "Other", "externalId": "tenant-a"}
    response = client.put("/api-l/admin/workspaces/child", json=clash, headers=_auth(parent.admin_key))
    assert (response.status_code, response.json()) == (400, {"type": "WorkspaceAlreadyExists"})
    bad_domain = {"workspaceId": parent.id, "name": "B", "externalId": "b", "domain": "gmail.com"}
    response = client.put("/api-l/admin/workspaces/child", json=bad_domain, headers=_auth(parent.admin_key))
    assert (response.status_code, response.json()) == (400, {"type": "InvalidDomain"})
    missing = client.put(
        "/api-l/admin/workspaces/child",
        json={"workspaceId": parent.id, "name": "C"},
        headers=_auth(parent.admin_key),
    )
    assert missing.status_code == 400 and missing.json()["message"].startswith("body/externalId ")


def test_list_get_and_tombstone(client: TestClient, parent: ParentAccount) -> None:
    a, b = parent.put_child("A", "ext-a"), parent.put_child("B", "ext-b")
    listed = client.get(
        "/api-l/admin/workspaces/child", params={"workspaceId": parent.id}, headers=_auth(parent.admin_key)
    ).json()
    assert [w["id"] for w in listed["workspaces"]] == [a.id, b.id]
    by_external = client.get(
        "/api-l/admin/workspaces/", params={"externalId": "ext-b"}, headers=_auth(parent.admin_key)
    )
    assert by_external.json()["id"] == b.id
    deleted = client.delete(
        "/api-l/admin/workspaces/", params={"workspaceId": a.id}, headers=_auth(parent.admin_key)
    )
    assert (deleted.status_code, deleted.content) == (201, b"")
    again = client.delete(
        "/api-l/admin/workspaces/", params={"workspaceId": a.id}, headers=_auth(parent.admin_key)
    )
    assert again.status_code == 201
    shown = client.get(
        "/api-l/admin/workspaces/", params={"workspaceId": a.id}, headers=_auth(parent.admin_key)
    )
    assert (shown.json()["status"], shown.json()["name"]) == ("Tombstoned", "DfTombstoned-A")
    reused = parent.put_child("A", "ext-a")
    assert reused.id != a.id


def test_authorization_header_messages(client: TestClient, parent: ParentAccount) -> None:
    cases = [
        ({}, "No authorization header"),
        ({"authorization": "Token x"}, "Invalid authorization header"),
        ({"authorization": "Bearer "}, "API key missing for request"),
        ({"authorization": "Bearer " + "0" * 64}, "API key not valid"),
    ]
    for headers, message in cases:
        response = client.get("/api-l/admin/workspaces/", params={"workspaceId": parent.id}, headers=headers)
        assert (response.status_code, response.json()) == (401, {"message": message})


def test_mismatched_workspace_ids_are_400(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    response = client.get(
        "/api-l/admin/workspaces/",
        params={"workspaceId": parent.id},
        headers={**_auth(parent.admin_key), "df-workspace-id": tenant.id},
    )
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Mismatched workspaceIds in request."},
    )
    response = client.get(
        "/api-l/admin/workspaces/", params={"workspaceId": "nope"}, headers=_auth(parent.admin_key)
    )
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Invalid workspaceId, not a valid UUID."},
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(min_value=0, max_value=3), min_size=2, max_size=3))
def test_no_key_opens_a_workspace_outside_its_subtree(client: TestClient, shape: list[int]) -> None:
    """Random forests of parents and children: a key opens exactly its own workspace and its children."""
    parents = [make_parent(client, f"P{n}-{id(shape)}-{i}") for i, n in enumerate(shape)]
    children = {
        p.id: [p.put_child(f"C{j}", f"c{j}") for j in range(n)] for p, n in zip(parents, shape, strict=True)
    }
    every_workspace = [p.id for p in parents] + [c.id for cs in children.values() for c in cs]
    for account in parents:
        allowed = {account.id} | {c.id for c in children[account.id]}
        for workspace_id in every_workspace:
            response = client.get(
                "/api-l/admin/workspaces/",
                params={"workspaceId": workspace_id},
                headers=_auth(account.admin_key),
            )
            assert response.status_code == (200 if workspace_id in allowed else 401)
            put = client.put(
                "/api-l/admin/workspaces/child",
                headers=_auth(account.admin_key),
                json={"workspaceId": workspace_id, "name": "X", "externalId": "x"},
            )
            # Only the key's own parent may gain children; a child is no parent, so 400 there.
            expected = 200 if workspace_id == account.id else 400 if workspace_id in allowed else 401
            assert put.status_code == expected
