"""`/api/admin/subscription-groups`: Dittofeed's wire shapes for list, upsert and delete, and the two
Internal segments kept in step with each group (§6.9, §7.5)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from engine.storage.resource_models import Segment
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for


class Api(AdminApi):
    prefix = "/api/admin/subscription-groups"

    def groups(self) -> dict[str, dict[str, Any]]:
        response = self.get()
        assert response.status_code == 200, response.text
        return {group["name"]: group for group in response.json()}


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Api:
    return Api(client, parent.admin_key, tenant.id)


def test_bootstrap_groups_are_listed_with_their_segments(api: Api) -> None:
    groups = api.groups()
    assert {group["channel"] for group in groups.values()} == {"Email", "Sms"}
    for group in groups.values():
        assert set(group) == {
            "id", "workspaceId", "name", "channel", "type", "createdAt", "updatedAt",
            "segmentId", "unsubscribedSegmentId",
        }  # fmt: skip
        assert group["type"] == "OptOut"


def test_create_then_update_by_id_and_by_name(api: Api) -> None:
    created = api.call("PUT", name="Newsletter", channel="Email", type="OptIn")
    assert created.status_code == 200, created.text
    group = created.json()
    assert (group["name"], group["channel"], group["type"]) == ("Newsletter", "Email", "OptIn")
    assert api.groups()["Newsletter"] == group

    renamed = api.call("PUT", id=group["id"], name="Weekly", channel="Email", type="OptIn").json()
    assert (renamed["id"], renamed["name"]) == (group["id"], "Weekly")
    retyped = api.call("PUT", name="Weekly", channel="Email", type="OptOut").json()
    assert (retyped["id"], retyped["type"]) == (group["id"], "OptOut")


def test_the_main_segment_follows_the_group_type(client: TestClient, api: Api) -> None:
    group = api.call("PUT", name="Promos", channel="Sms", type="OptIn").json()
    sessions: sessionmaker[Session] = client.app.state.sessions  # type: ignore[attr-defined]

    def entry() -> dict[str, Any]:
        with sessions() as session:
            node: dict[str, Any] = session.get_one(Segment, group["segmentId"]).definition["entryNode"]
            return node

    assert entry()["subscriptionGroupType"] == "OptIn"
    api.call("PUT", id=group["id"], channel="Sms", type="OptOut")
    assert entry() == {
        "id": "1",
        "type": "SubscriptionGroup",
        "subscriptionGroupId": group["id"],
        "subscriptionGroupType": "OptOut",
    }


def test_delete_removes_the_group_and_its_segments(client: TestClient, api: Api) -> None:
    group = api.call("PUT", name="Temp", channel="Email", type="OptIn").json()
    assert api.call("DELETE", id=group["id"]).status_code == 204
    assert api.call("DELETE", id=group["id"]).status_code == 404
    assert "Temp" not in api.groups()
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert session.get(Segment, group["segmentId"]) is None
        assert session.get(Segment, group["unsubscribedSegmentId"]) is None


@pytest.mark.parametrize(
    ("body", "expected_type"),
    [
        ({"id": "nope", "channel": "Email", "type": "OptIn"}, "IdError"),
        ({"channel": "Email", "type": "OptIn"}, "BadValues"),
        ({"id": str(uuid.uuid4()), "channel": "Email", "type": "OptIn"}, "BadValues"),
    ],
)
def test_typed_400s(api: Api, body: dict[str, Any], expected_type: str) -> None:
    response = api.call("PUT", **body)
    assert (response.status_code, response.json()["type"]) == (400, expected_type)


def test_names_are_unique_and_shapes_are_checked(api: Api) -> None:
    first = api.call("PUT", name="A", channel="Email", type="OptIn").json()
    api.call("PUT", name="B", channel="Email", type="OptIn")
    clash = api.call("PUT", id=first["id"], name="B", channel="Email", type="OptIn")
    assert (clash.status_code, clash.json()["type"]) == (400, "UniqueConstraintViolation")
    bad = api.call("PUT", name="C", channel="Fax", type="OptIn")
    assert bad.status_code == 400 and bad.json()["message"].startswith("body/channel")


class Subscribers:
    """The tenant's users as the subscription endpoints see them, and what was written about them."""

    def __init__(self, client: TestClient, api: Api, tenant: Tenant) -> None:
        self.client, self.api, self.tenant = client, api, tenant
        groups = api.groups()
        self.email = next(g["id"] for g in groups.values() if g["channel"] == "Email")
        self.sms = next(g["id"] for g in groups.values() if g["channel"] == "Sms")
        self.newsletter = api.call("PUT", name="Newsletter", channel="Email", type="OptIn").json()["id"]

    def identify(self, user: str, **traits: Any) -> None:
        response = self.client.post(
            "/api/public/apps/identify",
            json={"userId": user, "messageId": str(uuid.uuid4()), "traits": traits},
            headers={"authorization": self.tenant.write_key},
        )
        assert response.status_code == 204
        assert self.client.app.state.compute.compute(self.tenant.id).failed == 0  # type: ignore[attr-defined]

    def states(self, user: str) -> dict[str, bool]:
        response = self.api.client.get(
            "/api/admin/users/subscriptions",
            params={"workspaceId": self.tenant.id, "userId": user},
            headers=self.api.headers,
        )
        assert response.status_code == 200, response.text
        return {group["id"]: group["isSubscribed"] for group in response.json()["subscriptionGroups"]}

    def upload(self, data: bytes, group_id: str | None = None, **headers: str) -> Any:
        sent = {
            **self.api.headers,
            "df-workspace-id": self.tenant.id,
            "df-subscription-group-id": group_id or self.newsletter,
        }
        sent.update(headers)
        return self.client.post(
            "/api/admin/subscription-groups/upload-csv",
            files={"file": ("subscribers.csv", data, "text/csv")},
            headers={name: value for name, value in sent.items() if value},
        )

    def events(self, event: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(user, properties or traits) of the tenant's stored events, of `event` or identifies."""
        rows = self.client.app.state.event_store.query(  # type: ignore[attr-defined]
            "SELECT user_id, properties FROM user_events_v2 WHERE workspace_id = {w:String}"
            " AND event = {e:String} ORDER BY processing_time, user_id",
            {"w": self.tenant.id, "e": event or ""},
        )
        return [(user, json.loads(properties)) for user, properties in rows]


@pytest.fixture
def subscribers(client: TestClient, api: Api, tenant: Tenant) -> Subscribers:
    return Subscribers(client, api, tenant)


def test_assignments_patch_each_users_named_groups(subscribers: Subscribers) -> None:
    s = subscribers
    response = s.api.call(
        "PUT",
        "/assignments",
        userUpdates=[
            {"userId": "u1", "changes": {s.email: False, s.newsletter: True}},
            {"userId": "u2", "changes": {s.newsletter: True}},
        ],
    )
    assert (response.status_code, response.content) == (200, b"")
    assert s.states("u1") == {s.email: False, s.newsletter: True, s.sms: True}
    assert s.states("u2") == {s.email: True, s.newsletter: True, s.sms: True}
    assert (
        s.api.call(
            "PUT", "/assignments", userUpdates=[{"userId": "u1", "changes": {s.newsletter: False}}]
        ).status_code
        == 200
    )
    assert s.states("u1") == {s.email: False, s.newsletter: False, s.sms: True}
    assert len(s.events("DFSubscriptionChange")) == 4


def test_assignments_naming_a_foreign_group_change_nothing(
    subscribers: Subscribers, parent: ParentAccount
) -> None:
    s = subscribers
    foreign = Api(s.client, parent.admin_key, parent.put_child("Tenant B", "tenant-b").id).groups()
    foreign_email = next(g["id"] for g in foreign.values() if g["channel"] == "Email")
    response = s.api.call(
        "PUT",
        "/assignments",
        userUpdates=[{"userId": "u1", "changes": {s.newsletter: True, foreign_email: False}}],
    )
    assert response.status_code == 400 and foreign_email in response.json()["message"]
    bad = s.api.call("PUT", "/assignments", userUpdates=[{"userId": "", "changes": {}}])
    assert bad.status_code == 400 and "body/userUpdates/0/userId" in bad.json()["message"]
    assert s.events("DFSubscriptionChange") == []
    assert s.states("u1") == {s.email: True, s.newsletter: False, s.sms: True}


def test_a_csv_upload_subscribes_and_unsubscribes_each_rows_user(subscribers: Subscribers) -> None:
    s = subscribers
    s.identify("ann", email="ann@example.com")
    csv_file = (
        b"id,email,action,plan\n"
        b"u1,,unsubscribe,pro\n"
        b",ann@example.com,,free\n"
        b",new@example.com,subscribe,trial\n"
        b",new@example.com,,trial\n"
    )
    response = s.upload(csv_file)
    assert (response.status_code, response.content) == (200, b"")

    identified = dict(s.events())  # the latest identify of each user
    newcomers = {user for user, traits in s.events() if traits.get("email") == "new@example.com"}
    assert len(newcomers) == 1  # both rows of the unknown address name one new user
    newcomer = newcomers.pop()
    assert identified["u1"] == {"email": "", "plan": "pro"}
    assert identified["ann"] == {"email": "ann@example.com", "plan": "free"}
    assert [user for user, _ in s.events("DFSubscriptionChange")].count(newcomer) == 1
    assert s.states("u1")[s.newsletter] is False
    assert s.states("ann")[s.newsletter] is True
    assert s.states(newcomer)[s.newsletter] is True
    s.identify("someone-else")  # a compute cycle
    assert (s.states("ann")[s.newsletter], s.states(newcomer)[s.newsletter]) == (True, True)


@pytest.mark.parametrize(
    ("csv_file", "expected"),
    [
        (b"name\nann\n", {"type": "MissingHeaders", "message": 'csv must have "id" or "email" headers'}),
        (
            b"id,email\nu1,\n,\n",
            {
                "type": "RowValidationErrors",
                "message": "csv rows contained errors",
                "rowErrors": [{"row": 1, "error": 'row must have a non-empty "email" or "id" field'}],
            },
        ),
        (
            b"id,action\nu1,subscribe\nu2,later\n",
            {
                "type": "InvalidActionValue",
                "message": 'Invalid action value: "later". Must be "subscribe" or "unsubscribe".',
                "actionValue": "later",
            },
        ),
        (b"id\n\xff\n", {"type": "ParseError", "message": "misformatted file: not UTF-8 text"}),
    ],
)
def test_a_refused_csv_is_a_typed_400_and_writes_nothing(
    subscribers: Subscribers, csv_file: bytes, expected: dict[str, Any]
) -> None:
    response = subscribers.upload(csv_file)
    assert (response.status_code, response.json()) == (400, expected)
    assert subscribers.events("DFSubscriptionChange") == [] and subscribers.events() == []


def test_a_csv_upload_needs_its_headers_a_file_and_a_group_of_the_workspace(
    subscribers: Subscribers, parent: ParentAccount
) -> None:
    s = subscribers
    missing = s.upload(b"id\nu1\n", **{"df-subscription-group-id": ""})
    assert missing.status_code == 400 and "df-subscription-group-id" in missing.json()["message"]
    unknown = s.upload(b"id\nu1\n", group_id=str(uuid.uuid4()))
    assert unknown.status_code == 400 and "df-subscription-group-id" in unknown.json()["message"]
    no_file = s.client.post(
        "/api/admin/subscription-groups/upload-csv",
        data={"not": "a file"},
        headers={**s.api.headers, "df-workspace-id": s.tenant.id, "df-subscription-group-id": s.newsletter},
    )
    assert (no_file.status_code, no_file.json()["message"]) == (400, "missing file")
    sibling_key = admin_key_for(s.client, parent.put_child("Sibling", "sib").id)
    foreign = s.upload(b"id\nu1\n", authorization=f"Bearer {sibling_key}")
    assert foreign.status_code == 401
    assert s.events("DFSubscriptionChange") == []
