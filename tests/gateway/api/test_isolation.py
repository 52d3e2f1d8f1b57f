"""Tenant isolation over random forests of parents and children, for every endpoint built so far:
an admin key opens its own workspace and its children and nothing else; a write key writes into
its own workspace only, whatever the request claims."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.gateway.api.conftest import Tenant, admin_key_for, make_parent

AdminCall = Callable[[TestClient, str, str], Any]


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


ADMIN_CALLS: dict[str, AdminCall] = {
    "GET events": lambda c, key, w: c.get("/api/admin/events", params={"workspaceId": w}, headers=_auth(key)),
    "GET events/download": lambda c, key, w: c.get(
        "/api/admin/events/download", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET events/traits": lambda c, key, w: c.get(
        "/api/admin/events/traits", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET events/properties": lambda c, key, w: c.get(
        "/api/admin/events/properties", params={"workspaceId": w}, headers=_auth(key)
    ),
    "POST users": lambda c, key, w: c.post("/api/admin/users", json={"workspaceId": w}, headers=_auth(key)),
    "POST users/count": lambda c, key, w: c.post(
        "/api/admin/users/count", json={"workspaceId": w}, headers=_auth(key)
    ),
    "DELETE users": lambda c, key, w: c.request(
        "DELETE", "/api/admin/users", json={"workspaceId": w, "userIds": ["nobody"]}, headers=_auth(key)
    ),
    "GET users/subscriptions": lambda c, key, w: c.get(
        "/api/admin/users/subscriptions", params={"workspaceId": w, "userId": "u"}, headers=_auth(key)
    ),
    "GET groups/users": lambda c, key, w: c.get(
        "/api/admin/groups/users", params={"workspaceId": w, "groupId": "g"}, headers=_auth(key)
    ),
    "GET groups/user-groups": lambda c, key, w: c.get(
        "/api/admin/groups/user-groups", params={"workspaceId": w, "userId": "u"}, headers=_auth(key)
    ),
    "GET settings/data-sources": lambda c, key, w: c.get(
        "/api/admin/settings/data-sources", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET settings/email-providers": lambda c, key, w: c.get(
        "/api/admin/settings/email-providers", params={"workspaceId": w}, headers=_auth(key)
    ),
    "PUT settings/sms-providers/default": lambda c, key, w: c.put(
        "/api/admin/settings/sms-providers/default",
        json={"workspaceId": w, "smsProvider": "Test"},
        headers=_auth(key),
    ),
    "POST content/templates/batch-send": lambda c, key, w: c.post(
        "/api/admin/content/templates/batch-send",
        json={"workspaceId": w, "templateId": "t", "channel": "Email", "users": []},
        headers=_auth(key),
    ),
    "GET workspaces": lambda c, key, w: c.get(
        "/api-l/admin/workspaces/", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET journeys": lambda c, key, w: c.get(
        "/api/admin/journeys", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET journeys/stats": lambda c, key, w: c.get(
        "/api/admin/journeys/stats", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET broadcasts": lambda c, key, w: c.get(
        "/api/admin/broadcasts", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET segments": lambda c, key, w: c.get(
        "/api/admin/segments", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET segments/download": lambda c, key, w: c.get(
        "/api/admin/segments/download", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET user-properties": lambda c, key, w: c.get(
        "/api/admin/user-properties", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET resources": lambda c, key, w: c.get(
        "/api/admin/resources", params={"workspaceId": w, "segments": "true"}, headers=_auth(key)
    ),
    "GET subscription-groups": lambda c, key, w: c.get(
        "/api/admin/subscription-groups", params={"workspaceId": w}, headers=_auth(key)
    ),
    "PUT subscription-groups/assignments": lambda c, key, w: c.put(
        "/api/admin/subscription-groups/assignments",
        json={"workspaceId": w, "userUpdates": []},
        headers=_auth(key),
    ),
    "POST subscription-groups/upload-csv": lambda c, key, w: c.post(
        "/api/admin/subscription-groups/upload-csv",
        files={"file": ("s.csv", b"id\n", "text/csv")},
        # Every workspace's bootstrap email group has this id (§1.1); the file names no one.
        headers={
            **_auth(key),
            "df-workspace-id": w,
            "df-subscription-group-id": str(uuid.uuid5(uuid.UUID(w), "email-subscription-group")),
        },
    ),
    "GET content/templates": lambda c, key, w: c.get(
        "/api/admin/content/templates", params={"workspaceId": w}, headers=_auth(key)
    ),
    "PUT content/templates/reset": lambda c, key, w: c.put(
        "/api/admin/content/templates/reset",
        json={"workspaceId": w, "name": "isolation", "type": "Sms"},
        headers=_auth(key),
    ),
    "GET deliveries": lambda c, key, w: c.get(
        "/api/admin/deliveries", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET deliveries/count": lambda c, key, w: c.get(
        "/api/admin/deliveries/count", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET deliveries/download": lambda c, key, w: c.get(
        "/api/admin/deliveries/download", params={"workspaceId": w}, headers=_auth(key)
    ),
    "GET analysis/chart-data": lambda c, key, w: c.get(
        "/api/admin/analysis/chart-data",
        params={"workspaceId": w, "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-02T00:00:00Z"},
        headers=_auth(key),
    ),
    "GET analysis/summary": lambda c, key, w: c.get(
        "/api/admin/analysis/summary",
        params={"workspaceId": w, "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-02T00:00:00Z"},
        headers=_auth(key),
    ),
    "GET analysis/journey-stats": lambda c, key, w: c.get(
        "/api/admin/analysis/journey-stats", params={"workspaceId": w, "journeyId": "j"}, headers=_auth(key)
    ),
}

forests = st.lists(st.integers(min_value=0, max_value=2), min_size=2, max_size=3)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=forests)
def test_admin_keys_open_exactly_their_subtree(client: TestClient, shape: list[int]) -> None:
    run = uuid.uuid4().hex[:8]
    keys: dict[str, set[str]] = {}  # admin key -> the workspaces it may open
    every_workspace: list[str] = []
    for index, count in enumerate(shape):
        parent = make_parent(client, f"P{index}-{run}")
        children = [parent.put_child(f"C{j}", f"c{j}").id for j in range(count)]
        keys[parent.admin_key] = {parent.id, *children}
        keys.update({admin_key_for(client, child): {child} for child in children})
        every_workspace += [parent.id, *children]
    for key, allowed in keys.items():
        for workspace_id in every_workspace:
            for name, call in ADMIN_CALLS.items():
                status = call(client, key, workspace_id).status_code
                assert (status < 300) == (workspace_id in allowed), (name, status)
                assert status < 300 or status == 401, (name, status)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=forests)
def test_write_keys_write_only_into_their_own_workspace(client: TestClient, shape: list[int]) -> None:
    run = uuid.uuid4().hex[:8]
    tenants: list[Tenant] = []
    for index, count in enumerate(shape):
        parent = make_parent(client, f"P{index}-{run}")
        tenants += [parent.put_child(f"C{j}", f"c{j}") for j in range(count)]
    store = client.app.state.event_store  # type: ignore[attr-defined]
    for sender in tenants:
        for claimed in tenants:
            message_id = f"{sender.id}->{claimed.id}"
            body = {"userId": "u", "messageId": message_id, "event": "E", "workspaceId": claimed.id}
            response = client.post(
                "/api/public/apps/track",
                json=body,
                headers={"authorization": sender.write_key, "df-workspace-id": claimed.id},
            )
            assert response.status_code in (204, 400, 401)
            stored = store.query(
                "SELECT DISTINCT workspace_id FROM user_events_v2 WHERE message_id = {m:String}",
                {"m": message_id},
            )
            assert stored in ([], [(sender.id,)])
