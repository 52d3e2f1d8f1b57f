"""`/api/admin/subscription-groups`: Dittofeed's wire shapes for list, upsert and delete, and the two
Internal segments kept in step with each group (§6.9, §7.5)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from engine.storage.resource_models import Segment
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant


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
