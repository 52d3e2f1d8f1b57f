"""`/api/admin/broadcasts` (Dittofeed §6.5): V2 broadcasts created, edited and cleared with upstream's
typed 400s; one channel across template, subscription group and config; the status machine driven by
start, pause, resume and cancel; archive and rename; the segment recomputed on demand; V1 broadcasts
built by `execute`, once per name; and a child's key kept out of its siblings' broadcasts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.journey_models import Journey
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for

PREFIX = "/api/admin/broadcasts"
TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
EMAIL = {"type": "Email", "from": "hello@acme.test", "subject": "Sale", "body": "<p>Sale!</p>"}
SMS = {"type": "Sms", "body": "Sale! {{ user.firstName }}"}
WEBHOOK = {"type": "Webhook", "identifierKey": "email", "body": "{}"}


class Api(AdminApi):
    """The broadcasts endpoints of one workspace, and the resources a broadcast refers to."""

    prefix = PREFIX

    def put_v2(self, **body: Any) -> dict[str, Any]:
        response = self.call("PUT", "/v2", **body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def refused(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        """The 400 body of a call that must be refused."""
        response = self.call(method, path, **body)
        assert response.status_code == 400, response.text
        result: dict[str, Any] = response.json()
        return result

    def listed(self) -> dict[str, dict[str, Any]]:
        response = self.get()
        assert response.status_code == 200, response.text
        return {broadcast["name"]: broadcast for broadcast in response.json()}

    def status(self, broadcast_id: str) -> str:
        return str(next(b["status"] for b in self.listed().values() if b["id"] == broadcast_id))

    def act(self, action: str, broadcast_id: str) -> httpx.Response:
        return self.call("POST", f"/{action}", broadcastId=broadcast_id)

    def segment(self, name: str = "Paying", **extra: Any) -> str:
        response = self.client.put(
            "/api/admin/segments",
            json={"workspaceId": self.workspace_id, "name": name, "definition": TRAIT, **extra},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def template(self, name: str, definition: dict[str, Any]) -> str:
        response = self.client.put(
            "/api/admin/content/templates",
            json={"workspaceId": self.workspace_id, "name": name, "definition": definition},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def group(self, channel: str, name: str | None = None) -> str:
        """The bootstrap group of `channel`, or a new one named `name`."""
        if name is not None:
            response = self.client.put(
                "/api/admin/subscription-groups",
                json={"workspaceId": self.workspace_id, "name": name, "channel": channel, "type": "OptIn"},
                headers=self.headers,
            )
            assert response.status_code == 200, response.text
            return str(response.json()["id"])
        groups = self.client.get(
            "/api/admin/subscription-groups", params={"workspaceId": self.workspace_id}, headers=self.headers
        ).json()
        return str(next(g["id"] for g in groups if g["channel"] == channel))

    def ready(self, name: str, **extra: Any) -> dict[str, Any]:
        """A Draft broadcast that can start: a segment and an email template."""
        return self.put_v2(
            name=name,
            segmentId=self.segment(f"{name} segment"),
            messageTemplateId=self.template(f"{name} template", EMAIL),
            **extra,
        )


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Api:
    return Api(client, parent.admin_key, tenant.id)


NO_PROGRESS = {"total": 0, "sent": 0, "failed": 0, "skipped": 0, "pending": 0, "cancelled": 0}


# -- create, update, clear ---------------------------------------------------------------------------


def test_a_new_broadcast_is_an_email_draft_in_the_oldest_email_group(api: Api) -> None:
    bootstrap_email_group = api.group("Email")
    api.group("Email", name="Newer email group")
    created = api.put_v2(name="Spring sale")
    assert created == {
        "id": created["id"],
        "workspaceId": api.workspace_id,
        "name": "Spring sale",
        "status": "Draft",
        "config": {"type": "V2", "message": {"type": "Email"}},
        "subscriptionGroupId": bootstrap_email_group,
        "archived": False,
        "createdAt": created["createdAt"],
        "updatedAt": created["createdAt"],
        "version": "V2",
        "progress": NO_PROGRESS,
    }
    assert api.listed() == {"Spring sale": created}


def test_the_channel_of_a_new_broadcast_comes_from_its_template_group_or_config(api: Api) -> None:
    by_template = api.put_v2(name="By template", messageTemplateId=api.template("sms", SMS))
    assert by_template["config"] == {"type": "V2", "message": {"type": "Sms"}}
    assert by_template["subscriptionGroupId"] == api.group("Sms")

    by_config = api.put_v2(name="By config", config={"type": "V2", "message": {"type": "Sms"}})
    assert by_config["subscriptionGroupId"] == api.group("Sms")

    webhook = api.put_v2(name="Webhook", messageTemplateId=api.template("hook", WEBHOOK))
    assert webhook["config"]["message"] == {"type": "Webhook"}
    assert "subscriptionGroupId" not in webhook  # the workspace has no webhook group


def test_update_by_id_or_name_leaves_unsent_fields_and_null_clears(api: Api) -> None:
    segment, template = api.segment(), api.template("email", EMAIL)
    created = api.put_v2(
        name="Launch", segmentId=segment, messageTemplateId=template, scheduledAt="2026-11-22 09:00"
    )
    assert (created["segmentId"], created["messageTemplateId"]) == (segment, template)
    assert created["scheduledAt"] == "2026-11-22 09:00"

    config = {"type": "V2", "message": {"type": "Email"}, "rateLimit": 10, "batchSize": 500}
    by_name = api.put_v2(name="Launch", config=config)
    assert by_name["id"] == created["id"]
    assert (by_name["segmentId"], by_name["config"], by_name["scheduledAt"]) == (
        segment,
        config,
        "2026-11-22 09:00",
    )

    renamed = api.put_v2(id=created["id"].upper(), name="Big launch")
    assert (renamed["id"], renamed["name"]) == (created["id"], "Big launch")

    cleared = api.put_v2(
        id=created["id"], segmentId=None, messageTemplateId=None, subscriptionGroupId=None, scheduledAt=None
    )
    for field in ("segmentId", "messageTemplateId", "subscriptionGroupId", "scheduledAt"):
        assert field not in cleared
    assert cleared["config"] == config
    assert api.listed() == {"Big launch": cleared}


def test_a_full_config_is_stored_as_sent(api: Api) -> None:
    config = {
        "type": "V2",
        "message": {
            "type": "Sms",
            "providerOverride": "Twilio",
            "senderOverride": {"type": "MessageSid", "messagingServiceSid": "MG1"},
        },
        "rateLimit": 2.5,
        "batchSize": 1000,
        "defaultTimezone": "America/New_York",
        "useIndividualTimezone": True,
        "errorHandling": "PauseOnError",
    }
    assert api.put_v2(name="Full", config=config)["config"] == config
    email = {"type": "V2", "message": {"type": "Email", "providerOverride": "SendGrid"}}
    assert api.put_v2(name="Email override", config=email)["config"] == email


@pytest.mark.parametrize("scheduled_at", ["2026-11-22 09:00", "2026-11-22T09:00", "2026-11-22T09:00:30"])
def test_scheduled_at_is_a_naive_local_date_and_time(api: Api, scheduled_at: str) -> None:
    assert api.put_v2(name="Later", scheduledAt=scheduled_at)["scheduledAt"] == scheduled_at


# -- refusals ----------------------------------------------------------------------------------------


def test_upstreams_typed_refusals(api: Api) -> None:
    missing = api.refused("PUT", "/v2", segmentId=api.segment())
    assert missing == {
        "type": "MissingRequiredFields",
        "message": "Name is required when creating a new broadcast",
    }
    assert api.refused("PUT", "/v2", id="not-a-uuid", name="x")["type"] == "IdError"

    api.put_v2(name="Taken")
    other = api.put_v2(name="Other")
    clash = api.refused("PUT", "/v2", id=other["id"], name="Taken")
    assert clash["type"] == "UniqueConstraintViolation"
    created_with_a_taken_name = api.refused("PUT", "/v2", id=str(uuid.uuid4()), name="Taken")
    assert created_with_a_taken_name["type"] == "UniqueConstraintViolation"


@pytest.mark.parametrize("field", ["segmentId", "messageTemplateId", "subscriptionGroupId"])
@pytest.mark.parametrize("value", ["not-a-uuid", "3f1b8c52-2a57-4a4e-9d7e-0c1a5b7c9e11"])
def test_a_reference_to_nothing_of_the_workspace_is_refused_by_name(api: Api, field: str, value: str) -> None:
    refusal = api.refused("PUT", "/v2", name="Dangling", **{field: value})
    assert refusal["type"] == "ConstraintViolation"
    assert refusal["message"].startswith(f"{field} names no ")
    assert "Dangling" not in api.listed()


MESSAGE = "body/config/message"


def _email(**fields: Any) -> dict[str, Any]:
    """An email config with `fields` on top."""
    return {"type": "V2", "message": {"type": "Email"}, **fields}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (None, "body/config"),
        ({"message": {"type": "Email"}}, "body/config/type"),
        ({"type": "V2"}, "body/config/message"),
        ({"type": "V2", "message": {"type": "Fax"}}, "body/config/message/type"),
        (_email(rateLimit="fast"), "body/config/rateLimit"),
        (_email(batchSize=0), "body/config/batchSize"),
        (_email(batchSize=1001), "body/config/batchSize"),
        (_email(batchSize=2.5), "body/config/batchSize"),
        (_email(defaultTimezone="Mars/Olympus"), "body/config/defaultTimezone"),
        (_email(defaultTimezone="America"), "body/config/defaultTimezone"),
        (_email(errorHandling="Explode"), "body/config/errorHandling"),
        (_email(useIndividualTimezone="yes"), "body/config/useIndividualTimezone"),
        (_email(message={"type": "Email", "providerOverride": "Twilio"}), f"{MESSAGE}/providerOverride"),
        (_email(message={"type": "Email", "providerOverride": "Gmail"}), f"{MESSAGE}/providerOverride"),
        (_email(message={"type": "Sms", "providerOverride": "SendGrid"}), f"{MESSAGE}/providerOverride"),
        (_email(message={"type": "Sms", "senderOverride": {"type": "X"}}), f"{MESSAGE}/senderOverride/type"),
    ],
)  # fmt: skip
def test_a_malformed_config_is_refused_naming_the_field(api: Api, config: Any, field: str) -> None:
    refusal = api.refused("PUT", "/v2", name="Bad config", config=config)
    assert refusal["message"].startswith(f"{field} "), refusal


def test_a_rate_limit_that_is_not_positive_is_stored_and_cancels_at_start(api: Api) -> None:
    broadcast = api.ready("Too slow", config={"type": "V2", "message": {"type": "Email"}, "rateLimit": -1})
    assert broadcast["config"]["rateLimit"] == -1
    assert api.act("start", broadcast["id"]).status_code == 200
    assert api.status(broadcast["id"]) == "Cancelled"


@pytest.mark.parametrize(
    "scheduled_at", ["2026-11-22T09:00:00+02:00", "2026-11-22T09:00Z", "tomorrow", "2026-13-01 09:00", ""]
)
def test_scheduled_at_with_an_offset_or_no_date_is_refused(api: Api, scheduled_at: str) -> None:
    refusal = api.refused("PUT", "/v2", name="When", scheduledAt=scheduled_at)
    assert refusal["message"].startswith("body/scheduledAt ")


def test_malformed_bodies_name_the_field(api: Api) -> None:
    assert api.refused("PUT", "/v2", name="")["message"].startswith("body/name")
    assert api.refused("PUT", "/v2", name="x", segmentId=7)["message"].startswith("body/segmentId")
    assert api.refused("POST", "/start")["message"].startswith("body/broadcastId")
    assert api.refused("PUT", "/archive", broadcastId="b", archived="yes")["message"].startswith(
        "body/archived"
    )
    assert api.refused("POST", "/execute", broadcastName="x")["message"].startswith("body/segmentDefinition")


# -- one channel ---------------------------------------------------------------------------------------


def test_template_group_and_config_must_name_one_channel(api: Api) -> None:
    sms_template, email_group = api.template("sms", SMS), api.group("Email")
    refusal = api.refused(
        "PUT", "/v2", name="Mixed", messageTemplateId=sms_template, subscriptionGroupId=email_group
    )
    assert refusal["type"] == "ConstraintViolation"
    assert (
        "messageTemplateId (Sms)" in refusal["message"]
        and "subscriptionGroupId (Email)" in refusal["message"]
    )

    sms_config = {"type": "V2", "message": {"type": "Sms"}}
    email_template = api.template("email", EMAIL)
    refusal = api.refused("PUT", "/v2", name="Mixed", messageTemplateId=email_template, config=sms_config)
    assert "config/message/type (Sms)" in refusal["message"]

    # What is already stored counts too: an email broadcast cannot take an SMS config alone ...
    email = api.put_v2(name="Email", messageTemplateId=email_template)
    refusal = api.refused("PUT", "/v2", id=email["id"], config=sms_config)
    assert "subscriptionGroupId (Email)" in refusal["message"]
    # ... but can move to SMS with its template and group together.
    moved = api.put_v2(
        id=email["id"],
        config=sms_config,
        messageTemplateId=sms_template,
        subscriptionGroupId=api.group("Sms"),
    )
    assert moved["config"] == sms_config


def test_mobile_push_is_refused(api: Api) -> None:
    push_group = api.group("MobilePush", name="Push")
    refusal = api.refused("PUT", "/v2", name="Push", subscriptionGroupId=push_group)
    assert refusal["type"] == "ConstraintViolation" and "Mobile push" in refusal["message"]
    refusal = api.refused("PUT", "/v2", name="Push", config={"type": "V2", "message": {"type": "MobilePush"}})
    assert refusal["type"] == "ConstraintViolation" and "Mobile push" in refusal["message"]


# -- the status machine ------------------------------------------------------------------------------


def test_start_runs_a_ready_broadcast_and_starting_again_is_harmless(api: Api) -> None:
    broadcast = api.ready("Now")
    started = api.act("start", broadcast["id"])
    assert (started.status_code, started.json()) == (200, {"message": "Broadcast started"})
    assert api.status(broadcast["id"]) == "Running"
    assert api.act("start", broadcast["id"]).json() == {"message": "Broadcast started"}
    assert api.status(broadcast["id"]) == "Running"


def test_a_broadcast_without_segment_or_template_cannot_start(api: Api) -> None:
    no_segment = api.put_v2(name="No segment", messageTemplateId=api.template("email", EMAIL))
    assert api.act("start", no_segment["id"]).status_code == 400
    no_template = api.put_v2(name="No template", segmentId=api.segment())
    assert api.act("start", no_template["id"]).status_code == 400
    assert api.status(no_segment["id"]) == api.status(no_template["id"]) == "Draft"


def test_a_scheduled_broadcast_needs_a_timezone(api: Api) -> None:
    broadcast = api.ready("Later", scheduledAt="2030-01-01 09:00")
    refusal = api.refused("POST", "/start", broadcastId=broadcast["id"])
    assert "defaultTimezone" in refusal["message"]
    assert api.status(broadcast["id"]) == "Draft"

    api.put_v2(
        id=broadcast["id"],
        config={"type": "V2", "message": {"type": "Email"}, "defaultTimezone": "Europe/Paris"},
    )
    assert api.act("start", broadcast["id"]).status_code == 200
    assert api.status(broadcast["id"]) == "Scheduled"


def test_pause_resume_and_cancel(api: Api) -> None:
    broadcast = api.ready("Steered")
    api.act("start", broadcast["id"])
    for action, message, status in (
        ("pause", "Broadcast paused", "Paused"),
        ("resume", "Broadcast resumed", "Running"),
        ("cancel", "Broadcast cancelled", "Cancelled"),
        ("resume", "Broadcast resumed", "Cancelled"),  # cancelled is final
    ):
        response = api.act(action, broadcast["id"])
        assert (response.status_code, response.json()) == (200, {"message": message})
        assert api.status(broadcast["id"]) == status


def test_a_draft_can_be_cancelled_but_not_paused(api: Api) -> None:
    broadcast = api.put_v2(name="Never mind")
    api.act("pause", broadcast["id"])
    assert api.status(broadcast["id"]) == "Draft"
    api.act("cancel", broadcast["id"])
    assert api.status(broadcast["id"]) == "Cancelled"


@pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel"])
def test_an_unknown_broadcast_is_404(api: Api, action: str) -> None:
    assert api.act(action, str(uuid.uuid4())).status_code == 404
    assert api.act(action, "not-a-uuid").status_code == 404


def test_only_a_draft_changes_what_it_sends(api: Api) -> None:
    broadcast = api.ready("Fixed")
    api.act("start", broadcast["id"])
    for field, value in (
        ("segmentId", api.segment("Another")),
        ("messageTemplateId", None),
        ("subscriptionGroupId", api.group("Email", name="Another group")),
        ("config", {"type": "V2", "message": {"type": "Email"}, "batchSize": 5}),
        ("scheduledAt", "2030-01-01 09:00"),
    ):
        refusal = api.refused("PUT", "/v2", id=broadcast["id"], **{field: value})
        assert refusal["type"] == "ConstraintViolation"
        assert refusal["message"].startswith(f"{field} cannot change: the broadcast is Running")
    # Sending what it already has changes nothing, and the name may always change.
    same = api.put_v2(id=broadcast["id"], segmentId=broadcast["segmentId"].upper(), name="Renamed")
    assert (same["segmentId"], same["name"], same["status"]) == (broadcast["segmentId"], "Renamed", "Running")


# -- archive, rename, recompute, gmail -----------------------------------------------------------------


def test_archive_and_unarchive(api: Api) -> None:
    broadcast = api.put_v2(name="Old")
    archived = api.call("PUT", "/archive", broadcastId=broadcast["id"])
    assert (archived.status_code, archived.json()) == (200, {"message": "Broadcast archived"})
    assert api.listed()["Old"]["archived"] is True
    restored = api.call("PUT", "/archive", broadcastId=broadcast["id"], archived=False)
    assert restored.json() == {"message": "Broadcast unarchived"}
    assert api.listed()["Old"]["archived"] is False
    assert api.call("PUT", "/archive", broadcastId=str(uuid.uuid4())).status_code == 404


def test_rename_answers_the_v1_field_set(api: Api) -> None:
    broadcast = api.ready("First name")
    renamed = api.call("PUT", id=broadcast["id"], name="Second name")
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {
        "workspaceId": api.workspace_id,
        "id": broadcast["id"],
        "name": "Second name",
        "segmentId": broadcast["segmentId"],
        "messageTemplateId": broadcast["messageTemplateId"],
        "status": "Draft",
        "archived": False,
        "createdAt": broadcast["createdAt"],
        "updatedAt": renamed.json()["updatedAt"],
        "version": "V2",
        "progress": NO_PROGRESS,
    }
    api.put_v2(name="Taken")
    assert api.refused("PUT", "", id=broadcast["id"], name="Taken")["type"] == "UniqueConstraintViolation"
    assert api.call("PUT", id=str(uuid.uuid4()), name="x").status_code == 404


def test_recompute_segment_computes_the_broadcasts_segment_now(client: TestClient, api: Api) -> None:
    # A paused segment is not computed by the loop; only the request computes it.
    segment = api.segment("Paused segment", status="Paused")
    broadcast = api.put_v2(name="Fresh", segmentId=segment)

    def last_computed() -> Any:
        return client.get(
            "/api/admin/segments/manual-segment/status",
            params={"workspaceId": api.workspace_id, "segmentId": segment},
            headers=api.headers,
        ).json()["lastComputedAt"]

    assert last_computed() is None
    response = api.call("PUT", "/recompute-segment", broadcastId=broadcast["id"])
    assert (response.status_code, response.content) == (204, b"")
    assert last_computed() is not None

    no_segment = api.put_v2(name="Nobody")
    assert api.refused("PUT", "/recompute-segment", broadcastId=no_segment["id"])["message"]
    assert api.call("PUT", "/recompute-segment", broadcastId=str(uuid.uuid4())).status_code == 404


def test_no_one_has_authorised_gmail(api: Api) -> None:
    response = api.get("/gmail-authorization")
    assert (response.status_code, response.json()) == (200, {"authorized": False})


# -- V1: execute and trigger ---------------------------------------------------------------------------


def test_execute_builds_and_triggers_a_v1_broadcast_once_per_name(client: TestClient, api: Api) -> None:
    body = {"broadcastName": "Black Friday", "segmentDefinition": TRAIT, "messageTemplateDefinition": EMAIL}
    response = api.call("POST", "/execute", **body)
    assert response.status_code == 200, response.text
    broadcast_id = str(uuid.uuid5(uuid.UUID(api.workspace_id), "Black Friday"))
    assert response.json() == {"broadcastId": broadcast_id, "broadcastName": "Black Friday"}

    listed = api.listed()["Black Friday"]
    assert listed == {
        "workspaceId": api.workspace_id,
        "id": broadcast_id,
        "name": "Black Friday",
        "segmentId": listed["segmentId"],
        "journeyId": listed["journeyId"],
        "messageTemplateId": listed["messageTemplateId"],
        "status": "InProgress",
        "archived": False,
        "triggeredAt": listed["createdAt"],
        "createdAt": listed["createdAt"],
        "updatedAt": listed["updatedAt"],
        "version": "V1",
        "progress": NO_PROGRESS,
    }
    segments = client.get(
        "/api/admin/segments",
        params={"workspaceId": api.workspace_id, "ids": listed["segmentId"]},
        headers=api.headers,
    ).json()["segments"]
    assert [(s["name"], s["resourceType"], s["definition"]) for s in segments] == [
        (f"Broadcast - {broadcast_id}", "Internal", TRAIT)
    ]
    templates = client.get(
        "/api/admin/content/templates",
        params={"workspaceId": api.workspace_id, "resourceType": "Internal"},
        headers=api.headers,
    ).json()["templates"]
    assert [(t["id"], t["definition"]) for t in templates] == [(listed["messageTemplateId"], EMAIL)]
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        journey = session.scalars(select(Journey).where(Journey.workspace_id == api.workspace_id)).one()
    assert (journey.id, journey.status.value, journey.resource_type.value) == (
        listed["journeyId"],
        "Broadcast",
        "Internal",
    )
    assert journey.definition == {
        "entryNode": {"type": "EntryNode", "segment": listed["segmentId"], "child": "broadcast-message"},
        "nodes": [
            {
                "id": "broadcast-message",
                "type": "MessageNode",
                "name": "Broadcast Message",
                "variant": {"type": "Email", "templateId": listed["messageTemplateId"]},
                "child": "ExitNode",
                "subscriptionGroupId": api.group("Email"),
            }
        ],
        "exitNode": {"type": "ExitNode"},
    }

    again = api.call("POST", "/execute", **{**body, "messageTemplateDefinition": {**EMAIL, "subject": "New"}})
    assert again.json() == response.json()
    assert api.listed() == {"Black Friday": listed}


def test_execute_sends_sms_too(client: TestClient, api: Api) -> None:
    group = api.group("Sms", name="Promotions")
    response = api.call(
        "POST",
        "/execute",
        broadcastName="Text blast",
        segmentDefinition=TRAIT,
        messageTemplateDefinition=SMS,
        subscriptionGroupId=group,
    )
    assert response.status_code == 200, response.text
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        journey = session.scalars(select(Journey).where(Journey.workspace_id == api.workspace_id)).one()
        node = journey.definition["nodes"][0] if journey.definition else {}
    assert (node["variant"]["type"], node["subscriptionGroupId"]) == ("Sms", group)
    assert api.listed()["Text blast"]["status"] == "InProgress"


def test_execute_refusals_name_the_field(api: Api) -> None:
    def refusal(**body: Any) -> str:
        full = {
            "broadcastName": "Bad",
            "segmentDefinition": TRAIT,
            "messageTemplateDefinition": EMAIL,
            **body,
        }
        return str(api.refused("POST", "/execute", **full)["message"])

    assert refusal(messageTemplateDefinition=WEBHOOK).startswith("body/messageTemplateDefinition/type ")
    assert refusal(messageTemplateDefinition={"type": "Sms"}).startswith(
        "body/messageTemplateDefinition/body "
    )
    assert refusal(segmentDefinition={"nodes": []}).startswith("body/segmentDefinition/entryNode ")
    assert refusal(subscriptionGroupId=api.group("Sms")).startswith("body/subscriptionGroupId ")
    assert refusal(subscriptionGroupId=str(uuid.uuid4())).startswith("body/subscriptionGroupId ")
    api.put_v2(name="Taken")
    assert (
        api.refused(
            "POST",
            "/execute",
            broadcastName="Taken",
            segmentDefinition=TRAIT,
            messageTemplateDefinition=EMAIL,
        )["type"]
        == "UniqueConstraintViolation"
    )
    assert "Bad" not in api.listed()


def test_trigger_answers_the_v1_broadcast_and_refuses_v2(api: Api) -> None:
    executed = api.call(
        "POST", "/execute", broadcastName="V1", segmentDefinition=TRAIT, messageTemplateDefinition=EMAIL
    ).json()
    triggered = api.call("PUT", "/trigger", id=executed["broadcastId"])
    assert triggered.status_code == 200, triggered.text
    assert triggered.json() == api.listed()["V1"]
    assert triggered.json()["status"] == "InProgress"

    v2 = api.put_v2(name="V2")
    assert api.call("PUT", "/trigger", id=v2["id"]).status_code == 400
    assert api.call("PUT", "/trigger", id=str(uuid.uuid4())).status_code == 404
    assert api.refused("PUT", "/v2", id=executed["broadcastId"], name="V1")["type"] == "ConstraintViolation"


def test_listing_is_newest_first(api: Api) -> None:
    for name in ("first", "second", "third"):
        api.put_v2(name=name)
    assert list(api.listed()) == ["third", "second", "first"]
    first = api.listed()["first"]
    assert [b["name"] for b in api.get(ids=first["id"]).json()] == ["first"]


# -- isolation -----------------------------------------------------------------------------------------


def test_a_childs_key_cannot_see_or_steer_a_siblings_broadcasts(
    client: TestClient, parent: ParentAccount
) -> None:
    first = parent.put_child("First", "first")
    second = parent.put_child("Second", "second")
    owner = Api(client, parent.admin_key, second.id)
    theirs = owner.ready("Theirs")
    mine = Api(client, admin_key_for(client, first.id), first.id)
    intruder = Api(client, mine.key, second.id)

    assert intruder.get().status_code == 401
    assert intruder.get("/gmail-authorization").status_code == 401
    for action in ("start", "pause", "resume", "cancel"):
        assert intruder.act(action, theirs["id"]).status_code == 401
    assert intruder.call("PUT", "/v2", id=theirs["id"], name="Hijack").status_code == 401
    assert intruder.call("PUT", "/archive", broadcastId=theirs["id"]).status_code == 401
    assert intruder.call("PUT", "/recompute-segment", broadcastId=theirs["id"]).status_code == 401

    # Naming its own workspace, the key still finds nothing of the sibling's.
    assert mine.listed() == {}
    for action in ("start", "pause", "resume", "cancel"):
        assert mine.act(action, theirs["id"]).status_code == 404
    assert mine.call("PUT", id=theirs["id"], name="Hijack").status_code == 404
    assert mine.call("PUT", "/archive", broadcastId=theirs["id"]).status_code == 404
    assert mine.call("PUT", "/recompute-segment", broadcastId=theirs["id"]).status_code == 404
    assert mine.call("PUT", "/trigger", id=theirs["id"]).status_code == 404
    assert mine.refused("PUT", "/v2", id=theirs["id"], name="Hijack")["type"] == "IdError"
    refusal = mine.refused("PUT", "/v2", name="Borrowing", segmentId=theirs["segmentId"])
    assert refusal["message"].startswith("segmentId names no ")

    assert owner.listed() == {"Theirs": theirs}
