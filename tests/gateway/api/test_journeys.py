"""`/api/admin/journeys` (Dittofeed §6.4): upsert, list (whole or partial), delete in both forms and
per-node stats, with upstream's typed 400 bodies, 400s naming the field, and a child's key kept out of
its siblings' journeys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.journey_models import JourneyRun
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for
from tests.support.delivery_events import EMAIL, SMS, DeliveryEvents

TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}


class Api(AdminApi):
    """The journeys endpoints of one workspace, called with one admin key."""

    prefix = "/api/admin/journeys"

    def put(self, **body: Any) -> dict[str, Any]:
        response = self.call("PUT", **body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def listed(self, **query: Any) -> list[dict[str, Any]]:
        response = self.get(**query)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["journeys"]
        return found

    def add_segment(self, name: str) -> str:
        response = self.client.put(
            "/api/admin/segments",
            json={"workspaceId": self.workspace_id, "name": name, "definition": TRAIT},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        segment_id: str = response.json()["id"]
        return segment_id

    def add_template(self, name: str, channel: str = "Sms") -> str:
        definition = (
            {"type": "Sms", "body": "Hi"}
            if channel == "Sms"
            else {"type": "Email", "from": "a@example.com", "subject": "Hi", "body": "<p>Hi</p>"}
        )
        response = self.client.put(
            "/api/admin/content/templates",
            json={"workspaceId": self.workspace_id, "name": name, "definition": definition},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        template_id: str = response.json()["id"]
        return template_id


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Api:
    return Api(client, parent.admin_key, tenant.id)


def definition(segment_id: str, template_id: str, *, email_template: str | None = None) -> dict[str, Any]:
    """Entry on `segment_id` → an SMS ("sms") → a delay → an email ("email", when given) → exit."""
    nodes: list[dict[str, Any]] = [
        {
            "type": "MessageNode",
            "id": "sms",
            "variant": {"type": "Sms", "templateId": template_id},
            "child": "wait",
        },
        {
            "type": "DelayNode",
            "id": "wait",
            "variant": {"type": "Second", "seconds": 60},
            "child": "email" if email_template else "ExitNode",
        },
    ]
    if email_template:
        nodes.append(
            {
                "type": "MessageNode",
                "id": "email",
                "variant": {"type": "Email", "templateId": email_template},
                "child": "ExitNode",
            }
        )
    return {
        "entryNode": {"type": "EntryNode", "segment": segment_id, "child": "sms"},
        "exitNode": {"type": "ExitNode"},
        "nodes": nodes,
    }


def test_upsert_list_partial_and_delete(api: Api) -> None:
    segment, template = api.add_segment("Paid"), api.add_template("Hello")
    created = api.put(name="Onboarding", definition=definition(segment, template))
    assert set(created) == {
        "id",
        "workspaceId",
        "name",
        "status",
        "definition",
        "canRunMultiple",
        "createdAt",
        "updatedAt",
    }
    assert (created["workspaceId"], created["status"], created["canRunMultiple"]) == (
        api.workspace_id,
        "NotStarted",
        False,
    )
    assert isinstance(created["createdAt"], int) and created["createdAt"] == created["updatedAt"]
    # Found by name, then renamed by id.
    by_name = api.put(name="Onboarding", status="Running", canRunMultiple=True)
    assert (by_name["id"], by_name["status"], by_name["canRunMultiple"]) == (created["id"], "Running", True)
    renamed = api.put(id=created["id"], name="Welcome")
    assert (renamed["name"], renamed["definition"]) == ("Welcome", definition(segment, template))

    drafted = api.put(name="Drafted", draft={"nodes": [], "edges": []})
    assert api.listed() == [renamed, drafted]
    assert [j["id"] for j in api.listed(**{"ids[]": drafted["id"]})] == [drafted["id"]]
    partial = api.listed(getPartial="true")
    assert [set(j) for j in partial] == [
        {"id", "workspaceId", "name", "status", "canRunMultiple", "createdAt", "updatedAt"}
    ] * 2

    assert api.call("DELETE", id=created["id"]).status_code == 204
    assert api.call("DELETE", id=created["id"]).status_code == 404
    by_query = api.client.delete(
        f"{api.prefix}/v2", params={"workspaceId": api.workspace_id, "id": drafted["id"]}, headers=api.headers
    )
    assert by_query.status_code == 204
    again = api.client.delete(
        f"{api.prefix}/v2", params={"workspaceId": api.workspace_id, "id": drafted["id"]}, headers=api.headers
    )
    assert (again.status_code, again.json()) == (404, {"message": "Journey not found"})
    assert api.listed() == []


def test_typed_400_bodies(api: Api) -> None:
    segment, template = api.add_segment("Paid"), api.add_template("Hello")
    journey = api.put(name="J", definition=definition(segment, template))
    api.put(name="Other")

    def refused(**body: Any) -> dict[str, Any]:
        response = api.call("PUT", **body)
        assert response.status_code == 400, response.text
        result: dict[str, Any] = response.json()
        return result

    assert refused(id=str(uuid.uuid4()))["type"] == "BadValues"
    assert refused(id="nope", name="x")["type"] == "IdError"
    assert refused(id=journey["id"], name="Other")["type"] == "UniqueConstraintViolation"
    assert refused(id=journey["id"], status="Paused") == {
        "type": "StatusTransitionError",
        "message": "Cannot pause a journey that has not been started",
    }
    assert refused(name="Unstarted", status="Running") == {
        "type": "ConstraintViolation",
        "violations": [
            {"type": "CantStart", "message": "Draft journey must have a definition to be started"}
        ],
    }
    api.put(id=journey["id"], status="Running")
    assert refused(id=journey["id"], status="NotStarted")["type"] == "StatusTransitionError"
    event_entry = {"type": "EventEntryNode", "event": "Signed Up", "child": "await"}
    wait_for = {
        "type": "WaitForNode",
        "id": "await",
        "timeoutSeconds": 60,
        "timeoutChild": "ExitNode",
        "segmentChildren": [{"id": "ExitNode", "segmentId": segment}],
    }
    violation = refused(
        name="Keyed",
        definition={"entryNode": event_entry, "exitNode": {"type": "ExitNode"}, "nodes": [wait_for]},
    )
    assert [v["type"] for v in violation["violations"]] == ["WaitForNodeAndEventEntryNode"]


def test_bad_input_is_a_400_naming_the_field(api: Api, parent: ParentAccount) -> None:
    segment, template = api.add_segment("Paid"), api.add_template("Hello")
    sibling = parent.put_child("Tenant B", "tenant-b")
    theirs = Api(api.client, parent.admin_key, sibling.id).add_segment("Theirs")
    good = definition(segment, template)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": 5}, "body/name"),
        ({"name": "J", "status": "Done"}, "body/status"),
        ({"name": "J", "canRunMultiple": "yes"}, "body/canRunMultiple"),
        ({"name": "J", "draft": "graph"}, "body/draft"),
        ({"name": "J", "definition": {**good, "exitNode": None}}, "body/definition/exitNode"),
        ({"name": "J", "definition": definition(theirs, template)}, "body/definition/entryNode/segment"),
        (
            {"name": "J", "definition": definition(segment, str(uuid.uuid4()))},
            "body/definition/nodes/0/variant/templateId",
        ),
        (
            {"name": "J", "definition": {**good, "nodes": [{**good["nodes"][0], "child": "gone"}]}},
            "body/definition/nodes/0/child",
        ),
        (
            {
                "name": "J",
                "definition": {
                    **good,
                    "nodes": [{**good["nodes"][0], "subscriptionGroupId": "x"}, good["nodes"][1]],
                },
            },
            "body/definition/nodes/0/subscriptionGroupId",
        ),
    ]
    for body, field in cases:
        response = api.call("PUT", **body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"].startswith(f"{field} "), (field, response.text)
    assert api.listed() == []
    missing_id = api.call("DELETE")
    assert (missing_id.status_code, missing_id.json()["message"].split(" ")[0]) == (400, "body/id")


def test_a_child_key_cannot_touch_a_sibling_s_journeys(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    own = Api(client, parent.admin_key, tenant.id)
    journey = own.put(name="Private")
    sibling = parent.put_child("Tenant B", "tenant-b")
    sibling_key = admin_key_for(client, sibling.id)
    # With the sibling's own workspace id, the key reaches nothing of the tenant's.
    as_sibling = Api(client, sibling_key, sibling.id)
    assert as_sibling.listed(**{"ids[]": journey["id"]}) == []
    assert as_sibling.call("DELETE", id=journey["id"]).status_code == 404
    taken = as_sibling.call("PUT", id=journey["id"], name="Hijacked")
    assert (taken.status_code, taken.json()["type"]) == (400, "IdError")
    # Naming the tenant's workspace, the key is refused outright.
    aimed = Api(client, sibling_key, tenant.id)
    responses: list[httpx.Response] = [
        aimed.get(),
        aimed.get("/stats"),
        aimed.call("PUT", id=journey["id"], name="Hijacked"),
        aimed.call("DELETE", id=journey["id"]),
    ]
    assert [r.status_code for r in responses] == [401] * 4
    assert own.listed() == [journey]


def test_stats_rate_each_message_node_of_started_journeys(client: TestClient, api: Api) -> None:
    segment = api.add_segment("Paid")
    sms_template, email_template = api.add_template("Code"), api.add_template("News", "Email")
    running = api.put(
        name="Running",
        definition=definition(segment, sms_template, email_template=email_template),
        status="Running",
    )
    unstarted = api.put(name="Unstarted", definition=definition(segment, sms_template))
    events = DeliveryEvents(client, api.workspace_id)
    sent_at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    sends = [
        ("s1", "sms", SMS, ["DFSmsDelivered"]),
        ("s2", "sms", SMS, ["DFSmsFailed"]),
        ("e1", "email", EMAIL, ["DFEmailDelivered", "DFEmailOpened", "DFEmailClicked"]),
        ("e2", "email", EMAIL, ["DFEmailDelivered"]),
        ("e3", "email", EMAIL, []),
        ("e4", "email", EMAIL, ["DFEmailBounced"]),
    ]
    for message_id, node, variant, statuses in sends:
        tags = {"journeyId": running["id"], "nodeId": node}
        events.sent(message_id, "ada", sent_at.isoformat(), template="t", variant=variant, tags=tags,
                    processed_at=sent_at)  # fmt: skip
        for offset, status in enumerate(statuses):
            events.status(status, message_id, "ada", (sent_at + timedelta(minutes=offset + 1)).isoformat())

    response = api.get("/stats")
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "journeyId": running["id"],
            "workspaceId": api.workspace_id,
            "nodeStats": {
                "sms": {
                    "type": "MessageNodeStats",
                    "proportions": {"childEdge": 100},
                    "channelStats": {"type": "Sms", "deliveryRate": 0.5, "failRate": 0.5},
                },
                "email": {
                    "type": "MessageNodeStats",
                    "proportions": {"childEdge": 100},
                    "channelStats": {
                        "type": "Email",
                        "deliveryRate": 0.5,
                        "openRate": 0.25,
                        "clickRate": 0.25,
                        "spamRate": 0,
                    },
                },
            },
        }
    ]
    # Not started: nothing to report, even when asked for by id.
    narrowed = api.client.get(
        f"{api.prefix}/stats",
        params=httpx.QueryParams([("workspaceId", api.workspace_id), ("journeyIds", unstarted["id"])]),
        headers=api.headers,
    )
    assert narrowed.json() == []


def test_starting_a_journey_on_a_manual_segment_computes_it_at_once(api: Api) -> None:
    manual = {"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []}
    response = api.client.put(
        "/api/admin/segments",
        json={"workspaceId": api.workspace_id, "name": "Hand-picked", "definition": manual},
        headers=api.headers,
    )
    segment = response.json()["id"]

    def last_computed() -> Any:
        status = api.client.get(
            "/api/admin/segments/manual-segment/status",
            params={"workspaceId": api.workspace_id, "segmentId": segment},
            headers=api.headers,
        )
        assert status.status_code == 200, status.text
        return status.json()["lastComputedAt"]

    journey = api.put(name="J", definition=definition(segment, api.add_template("Hello")))
    assert last_computed() is None
    api.put(id=journey["id"], status="Running")
    assert last_computed() is not None


def test_a_tracked_event_starts_a_running_event_entry_journey_once_per_key(
    client: TestClient, api: Api, tenant: Tenant
) -> None:
    template_id = api.add_template("receipt", channel="Email")
    api.put(
        name="receipts",
        status="Running",
        definition={
            "entryNode": {"type": "EventEntryNode", "event": "Order*", "key": "orderId", "child": "mail"},
            "exitNode": {"type": "ExitNode"},
            "nodes": [
                {
                    "type": "MessageNode",
                    "id": "mail",
                    "variant": {"type": "Email", "templateId": template_id},
                    "child": "ExitNode",
                }
            ],
        },
    )
    headers = {"authorization": tenant.write_key}
    for message_id, event, order in (
        ("m1", "Order Placed", "o-1"),
        ("m2", "Order Placed", "o-1"),
        ("m3", "Order Shipped", "o-2"),
        ("m4", "Signed Up", "o-3"),
    ):
        body = {"userId": "buyer", "messageId": message_id, "event": event, "properties": {"orderId": order}}
        assert client.post("/api/public/apps/track", json=body, headers=headers).status_code == 204

    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        runs = session.scalars(select(JourneyRun).where(JourneyRun.workspace_id == tenant.id)).all()
    assert sorted((run.user_id, run.triggering_message_id) for run in runs) == [
        ("buyer", "m1"),
        ("buyer", "m3"),
    ]
