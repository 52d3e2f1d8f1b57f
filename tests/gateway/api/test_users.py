"""`/api/admin/users`: users are whoever has computed assignments; listed by id with cursors, filtered
by segments, subscriptions and property values, counted, and deleted everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.assignments import Assignment, write_assignments
from engine.storage.resource_models import ResourceType, Segment, SubscriptionGroup, UserProperty
from tests.gateway.api.conftest import ParentAccount, Tenant, admin_key_for

USERS = ["u1", "u2", "u3", "u4", "u5"]


class Directory:
    """A tenant with five users: u1 and u2 are VIPs, u2 has churned, u1 unsubscribed from email."""

    def __init__(self, client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
        self.client, self.parent, self.tenant = client, parent, tenant
        with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
            self.property_ids: dict[str, str] = {
                name: property_id
                for name, property_id in session.execute(
                    select(UserProperty.name, UserProperty.id).where(UserProperty.workspace_id == tenant.id)
                )
            }
            vip = Segment(workspace_id=tenant.id, name="VIPs", definition={})
            churned = Segment(workspace_id=tenant.id, name="Churned", definition={})
            session.add_all([vip, churned])
            session.flush()
            self.vip, self.churned = vip.id, churned.id
            groups = session.scalars(
                select(SubscriptionGroup).where(SubscriptionGroup.workspace_id == tenant.id)
            )
            self.email_group = next(g for g in groups if g.channel == "Email")
            self.email_group_id = self.email_group.id
            self.email_segment = session.scalars(
                select(Segment.id).where(
                    Segment.subscription_group_id == self.email_group_id,
                    Segment.resource_type == ResourceType.INTERNAL,
                    Segment.name == f"subscriptionGroup-{self.email_group_id}",
                )
            ).one()
        w = tenant.id
        self.assign(
            [Assignment.of_property(w, self.property_ids["id"], user, user) for user in USERS]
            + [
                Assignment.of_property(w, self.property_ids["email"], "u1", "ann@example.com"),
                Assignment.of_property(w, self.property_ids["email"], "u2", "bob@example.com"),
                Assignment.of_segment(w, self.vip, "u1", True),
                Assignment.of_segment(w, self.vip, "u2", True),
                Assignment.of_segment(w, self.vip, "u3", False),
                Assignment.of_segment(w, self.churned, "u2", True),
                Assignment.of_segment(w, self.email_segment, "u1", False),
            ]
        )

    def assign(self, assignments: list[Assignment], at: datetime | None = None) -> None:
        write_assignments(self.client.app.state.event_store, assignments, at=at)  # type: ignore[attr-defined]

    def post(self, path: str, key: str | None = None, **body: Any) -> Any:
        return self.client.post(
            f"/api/admin/users{path}",
            json={"workspaceId": self.tenant.id, **body},
            headers={"authorization": f"Bearer {key or self.parent.admin_key}"},
        )

    def ids(self, **body: Any) -> list[str]:
        response = self.post("", **body)
        assert response.status_code == 200, response.text
        return [user["id"] for user in response.json()["users"]]

    def count(self, **body: Any) -> int:
        response = self.post("/count", **body)
        assert response.status_code == 200, response.text
        count: int = response.json()["userCount"]
        return count


@pytest.fixture
def directory(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Directory:
    return Directory(client, parent, tenant)


def test_users_carry_their_properties_and_visible_segments(directory: Directory) -> None:
    response = directory.post("")
    assert response.status_code == 200
    body = response.json()
    assert body["userCount"] == 0 and "nextCursor" not in body and "previousCursor" not in body
    assert [user["id"] for user in body["users"]] == USERS
    ann = body["users"][0]
    assert ann["properties"] == {
        directory.property_ids["id"]: {"name": "id", "value": "u1"},
        directory.property_ids["email"]: {"name": "email", "value": "ann@example.com"},
    }
    # The Internal subscription segment is never shown; a false membership is not a membership.
    assert ann["segments"] == [{"id": directory.vip, "name": "VIPs"}]
    assert body["users"][2]["segments"] == []


def test_cursor_pages_forward_and_back(directory: Directory) -> None:
    first = directory.post("", limit=2).json()
    assert [u["id"] for u in first["users"]] == ["u1", "u2"] and "previousCursor" not in first
    second = directory.post("", limit=2, cursor=first["nextCursor"]).json()
    assert [u["id"] for u in second["users"]] == ["u3", "u4"]
    third = directory.post("", limit=2, cursor=second["nextCursor"]).json()
    assert [u["id"] for u in third["users"]] == ["u5"] and "nextCursor" not in third
    back = directory.post(
        "", limit=2, cursor=second["previousCursor"], direction="before", exclusiveCursor=True
    ).json()
    assert [u["id"] for u in back["users"]] == ["u1", "u2"]


def test_descending_order(directory: Directory) -> None:
    assert directory.ids(sortOrder="desc") == list(reversed(USERS))
    first = directory.post("", limit=2, sortOrder="desc").json()
    assert [
        u["id"]
        for u in directory.post("", limit=2, sortOrder="desc", cursor=first["nextCursor"]).json()["users"]
    ] == ["u3", "u2"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"userIds": ["u3", "nobody"]}, ["u3"]),
        ({"segmentFilter": ["VIP"]}, ["u1", "u2"]),
        ({"segmentFilter": ["VIP", "CHURNED"]}, ["u2"]),
        ({"segmentFilter": ["VIP"], "negativeSegmentFilter": ["CHURNED"]}, ["u1"]),
        ({"negativeSegmentFilter": ["VIP"]}, ["u3", "u4", "u5"]),
        ({"userPropertyFilter": [{"id": "EMAIL", "values": ["bob@example.com"]}]}, ["u2"]),
        ({"userPropertyFilter": [{"id": "EMAIL", "values": ['"ann@example.com"']}]}, ["u1"]),
        ({"unsubscribedFromFilter": ["EMAIL_GROUP"]}, []),
        ({"subscriptionGroupFilter": ["EMAIL_GROUP"]}, ["u2", "u3", "u4", "u5"]),
        ({"negativeSubscriptionGroupFilter": ["EMAIL_GROUP"]}, ["u1"]),
    ],
)
def test_filters_and_count_agree(directory: Directory, body: dict[str, Any], expected: list[str]) -> None:
    names = {
        "VIP": directory.vip,
        "CHURNED": directory.churned,
        "EMAIL": directory.property_ids["email"],
        "EMAIL_GROUP": directory.email_group_id,
    }

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        return names.get(value, value)

    body = resolve(body)
    assert directory.ids(**body) == expected
    assert directory.count(**body) == len(expected)


def test_the_latest_assignment_wins(directory: Directory) -> None:
    later = datetime.now(UTC) + timedelta(seconds=5)
    directory.assign([Assignment.of_segment(directory.tenant.id, directory.vip, "u1", False)], at=later)
    assert directory.ids(segmentFilter=[directory.vip]) == ["u2"]


def test_subscriptions_default_by_group_type(directory: Directory) -> None:
    users = directory.post("", includeSubscriptions=True, userIds=["u1", "u2"]).json()["users"]
    subscribed = {u["id"]: {s["id"]: s["subscribed"] for s in u["subscriptions"]} for u in users}
    # Email is opt-out: u2 has no explicit choice and is subscribed; u1's assignment says otherwise.
    assert subscribed["u2"][directory.email_group_id] is True
    assert subscribed["u1"][directory.email_group_id] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cursor": "not a cursor"}, "body/cursor"),
        ({"limit": 0}, "body/limit"),
        ({"direction": "sideways"}, "body/direction"),
        ({"segmentFilter": "VIP"}, "body/segmentFilter"),
        ({"subscriptionGroupFilter": ["no-such-group"]}, "body/subscriptionGroupFilter"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    directory: Directory, body: dict[str, Any], field: str
) -> None:
    response = directory.post("", **body)
    assert response.status_code == 400
    assert field in response.json()["message"]


def _send(directory: Directory, tenant: Tenant, user: str, message_id: str) -> None:
    response = directory.client.post(
        "/api/public/apps/track",
        json={"userId": user, "messageId": message_id, "event": "E"},
        headers={"authorization": tenant.write_key},
    )
    assert response.status_code == 204


def _stored_users(directory: Directory, workspace_id: str) -> list[str]:
    rows = directory.client.app.state.event_store.query(  # type: ignore[attr-defined]
        "SELECT user_id FROM user_events_v2 WHERE workspace_id = {w:String} ORDER BY user_id",
        {"w": workspace_id},
    )
    return [row[0] for row in rows]


@pytest.mark.parametrize("how", ["json", "query"])
def test_delete_removes_the_users_events_and_assignments_only(directory: Directory, how: str) -> None:
    other = directory.parent.put_child("Tenant B", "tenant-b")
    for tenant in (directory.tenant, other):
        _send(directory, tenant, "u1", f"{tenant.id}-1")
        _send(directory, tenant, "u2", f"{tenant.id}-2")
    headers = {"authorization": f"Bearer {directory.parent.admin_key}"}
    if how == "json":
        response = directory.client.request(
            "DELETE",
            "/api/admin/users",
            json={"workspaceId": directory.tenant.id, "userIds": ["u1"]},
            headers=headers,
        )
    else:
        response = directory.client.delete(
            "/api/admin/users/v2",
            params={"workspaceId": directory.tenant.id, "userIds": ["u1"]},
            headers=headers,
        )
    assert (response.status_code, response.content) == (204, b"")
    assert directory.ids() == ["u2", "u3", "u4", "u5"]
    assert _stored_users(directory, directory.tenant.id) == ["u2"]
    assert _stored_users(directory, other.id) == ["u1", "u2"]


def test_a_childs_key_cannot_read_or_delete_a_siblings_users(directory: Directory) -> None:
    sibling_key = admin_key_for(directory.client, directory.parent.put_child("Sibling", "sib").id)
    assert directory.post("", key=sibling_key).status_code == 401
    response = directory.client.request(
        "DELETE",
        "/api/admin/users",
        json={"workspaceId": directory.tenant.id, "userIds": ["u1"]},
        headers={"authorization": f"Bearer {sibling_key}"},
    )
    assert response.status_code == 401
    assert directory.count() == 5


def _subscriptions(directory: Directory, user: str, key: str | None = None) -> Any:
    return directory.client.get(
        "/api/admin/users/subscriptions",
        params={"workspaceId": directory.tenant.id, "userId": user},
        headers={"authorization": f"Bearer {key or directory.parent.admin_key}"},
    )


def test_a_users_subscriptions_follow_group_defaults_and_changes(directory: Directory) -> None:
    changed = directory.client.put(
        "/api/admin/subscription-groups/assignments",
        json={
            "workspaceId": directory.tenant.id,
            "userUpdates": [{"userId": "u3", "changes": {directory.email_group_id: False}}],
        },
        headers={"authorization": f"Bearer {directory.parent.admin_key}"},
    )
    assert changed.status_code == 200
    body = _subscriptions(directory, "u3").json()
    assert body["workspaceId"] == directory.tenant.id and body["userId"] == "u3"
    by_channel = {group["channel"]: group for group in body["subscriptionGroups"]}
    assert set(by_channel) == {"Email", "Sms"}
    assert by_channel["Email"] == {
        "id": directory.email_group_id,
        "name": "Tenant A - Email",
        "isSubscribed": False,
        "channel": "Email",
    }
    assert by_channel["Sms"]["isSubscribed"] is True
    assert [g["isSubscribed"] for g in _subscriptions(directory, "u4").json()["subscriptionGroups"]] == [
        True,
        True,
    ]


def test_a_users_subscriptions_need_a_user_and_a_key_of_the_workspace(directory: Directory) -> None:
    missing = directory.client.get(
        "/api/admin/users/subscriptions",
        params={"workspaceId": directory.tenant.id},
        headers={"authorization": f"Bearer {directory.parent.admin_key}"},
    )
    assert missing.status_code == 400 and "querystring/userId" in missing.json()["message"]
    sibling_key = admin_key_for(directory.client, directory.parent.put_child("Sibling", "sib").id)
    assert _subscriptions(directory, "u1", key=sibling_key).status_code == 401
