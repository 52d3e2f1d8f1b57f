"""Provider webhooks speak each provider's wire format (Dittofeed §5.2) and land as DF status events
(§8.3): a signed status is stored before the 200, a replay is stored once, a forged or tampered one is
refused with the documented status and writes nothing, a child without a secret uses its parent's, and
a status tagged for one workspace cannot be verified with another workspace's secret.

Every request is built and signed by the stand-ins in `webhook_senders`, independently of the code
under test.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.models import Secret
from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.api.conftest import ParentAccount, Tenant, make_parent
from tests.gateway.api.webhook_senders import (
    LEGACY_MOUNT,
    PUBLIC_MOUNT,
    SENDERS,
    Key,
    MandrillSender,
    PostmarkSender,
    ResendSender,
    Sender,
    SendgridSender,
    TwilioSender,
)

SEND_ID = "0d1c2b3a-4f5e-4d6c-8b7a-9f8e7d6c5b4a"
TEMPLATE_ID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"


def put_secret(client: TestClient, workspace_id: str, name: str, config: dict[str, Any]) -> None:
    """Store the provider configuration (every workspace is bootstrapped with a keyless one)."""
    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        query = select(Secret).where(Secret.workspace_id == workspace_id, Secret.name == name)
        secret = session.scalar(query) or Secret(workspace_id=workspace_id, name=name)
        secret.config_value = config
        session.add(secret)


def status_events(client: TestClient, workspace_id: str) -> list[tuple[Any, ...]]:
    """(event, origin_message_id, user_id, event_time, properties, message_id) of the workspace."""
    rows = client.app.state.event_store.query(  # type: ignore[attr-defined]
        "SELECT event, origin_message_id, user_id, toString(event_time), properties, message_id"
        " FROM internal_events WHERE workspace_id = {w:String} ORDER BY event_time, event, message_id",
        {"w": workspace_id},
    )
    return [(*row[:4], json.loads(row[4]), row[5]) for row in rows]


def tags(workspace_id: str, user_id: str = "user-1") -> dict[str, str]:
    return {"workspaceId": workspace_id, "userId": user_id, "messageId": SEND_ID, "templateId": TEMPLATE_ID}


@pytest.fixture(params=SENDERS, ids=lambda kind: kind.provider)
def sender(request: pytest.FixtureRequest, client: TestClient) -> Sender:
    kind: type[Sender] = request.param
    return kind(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]


@pytest.fixture
def tenant_b(parent: ParentAccount) -> Tenant:
    return parent.put_child("Tenant B", "tenant-b")


def _keyed(client: TestClient, sender: Sender, workspace_id: str) -> Key:
    key = sender.new_key()
    put_secret(client, workspace_id, sender.secret_name, key.config)
    return key


# -- every provider ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mount", [PUBLIC_MOUNT, LEGACY_MOUNT])
def test_a_signed_status_is_stored_as_a_df_status_event(
    client: TestClient, tenant: Tenant, sender: Sender, mount: str
) -> None:
    key = _keyed(client, sender, tenant.id)
    before = datetime.now(UTC).replace(tzinfo=None)
    response = sender.status(key, tags(tenant.id), mount=mount).post(client)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert (response.status_code, response.content) == (200, b"")
    ((event, origin, user, event_time, properties, _),) = status_events(client, tenant.id)
    assert (event, origin, user) == (sender.df_event, SEND_ID, "user-1")
    if sender.expected_time is not None:
        assert event_time == sender.expected_time
    else:  # Twilio: the time of receipt
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= datetime.fromisoformat(
            event_time
        )
        assert datetime.fromisoformat(event_time) <= after
    assert properties == sender.expected_properties(tags(tenant.id))


def test_a_replayed_or_resent_status_is_stored_once(
    client: TestClient, tenant: Tenant, sender: Sender
) -> None:
    key = _keyed(client, sender, tenant.id)
    delivery = sender.status(key, tags(tenant.id))
    for _ in range(3):
        assert delivery.post(client).status_code == 200
    # A provider retry is signed afresh (new timestamp, new Svix id): still the same event.
    assert sender.status(key, tags(tenant.id)).post(client).status_code == 200
    assert len(status_events(client, tenant.id)) == 1


def test_a_tampered_status_is_refused_and_writes_nothing(
    client: TestClient, tenant: Tenant, sender: Sender
) -> None:
    key = _keyed(client, sender, tenant.id)
    forged = sender.forge(sender.status(key, tags(tenant.id)))
    response = forged.post(client)
    assert response.status_code == sender.bad_signature_status
    assert "signature" in response.json()["message"].lower()
    assert status_events(client, tenant.id) == []


def test_a_workspace_without_a_secret_gets_the_documented_status(
    client: TestClient, tenant: Tenant, sender: Sender
) -> None:
    response = sender.status(sender.new_key(), tags(tenant.id)).post(client)
    assert response.status_code == sender.missing_secret_status
    assert response.json()["message"]
    assert status_events(client, tenant.id) == []


def test_a_child_without_a_secret_is_verified_with_its_parents(
    client: TestClient, parent: ParentAccount, tenant: Tenant, sender: Sender
) -> None:
    key = _keyed(client, sender, parent.id)
    assert sender.status(key, tags(tenant.id)).post(client).status_code == 200
    assert [row[:3] for row in status_events(client, tenant.id)] == [(sender.df_event, SEND_ID, "user-1")]
    assert status_events(client, parent.id) == []


def test_a_status_tagged_for_one_workspace_cannot_be_verified_with_anothers_secret(
    client: TestClient, tenant: Tenant, tenant_b: Tenant, sender: Sender
) -> None:
    key_a, key_b = _keyed(client, sender, tenant.id), _keyed(client, sender, tenant_b.id)
    assert sender.status(key_a, tags(tenant_b.id)).post(client).status_code == sender.bad_signature_status
    assert status_events(client, tenant.id) == status_events(client, tenant_b.id) == []
    # Signed by B's own key it is B's, and only B's.
    assert sender.status(key_b, tags(tenant_b.id)).post(client).status_code == 200
    assert len(status_events(client, tenant_b.id)) == 1
    assert status_events(client, tenant.id) == []


def test_a_workspace_that_cannot_receive_events_gets_nothing(
    client: TestClient, parent: ParentAccount, sender: Sender
) -> None:
    key = _keyed(client, sender, parent.id)
    response = sender.status(key, tags(parent.id)).post(client)
    assert response.status_code == sender.ineligible_status
    assert response.json() == {"message": "WorkspaceIneligible"}
    assert status_events(client, parent.id) == []


def test_a_status_without_a_user_tag_is_acknowledged_and_dropped(
    client: TestClient, tenant: Tenant, sender: Sender
) -> None:
    key = _keyed(client, sender, tenant.id)
    untagged = {name: value for name, value in tags(tenant.id).items() if name != "userId"}
    assert sender.status(key, untagged).post(client).status_code == 200
    assert status_events(client, tenant.id) == []


# -- SendGrid ---------------------------------------------------------------------------------------


@pytest.fixture
def sendgrid(client: TestClient) -> SendgridSender:
    return SendgridSender(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "df_event"),
    [
        ("processed", "DFEmailProcessed"),
        ("delivered", "DFEmailDelivered"),
        ("open", "DFEmailOpened"),
        ("click", "DFEmailClicked"),
        ("bounce", "DFEmailBounced"),
        ("dropped", "DFEmailDropped"),
        ("spamreport", "DFEmailMarkedSpam"),
        ("deferred", None),
        ("unsubscribe", None),
    ],
)
def test_sendgrid_event_types(
    client: TestClient, tenant: Tenant, sendgrid: SendgridSender, event: str, df_event: str | None
) -> None:
    key = _keyed(client, sendgrid, tenant.id)
    assert sendgrid.status(key, tags(tenant.id), event=event).post(client).status_code == 200
    assert [row[0] for row in status_events(client, tenant.id)] == ([df_event] if df_event else [])


def test_sendgrid_processed_is_stored_under_its_smtp_id(
    client: TestClient, tenant: Tenant, sendgrid: SendgridSender
) -> None:
    key = _keyed(client, sendgrid, tenant.id)
    sendgrid.status(key, tags(tenant.id), event="processed").post(client)
    ((*_, message_id),) = status_events(client, tenant.id)
    assert message_id == f"processed:{SendgridSender.SMTP_ID}"


@pytest.mark.parametrize(
    ("event", "df_event"), [("bounce", "DFEmailBounced"), ("spamreport", "DFEmailMarkedSpam")]
)
def test_sendgrid_bounce_without_custom_args_is_joined_to_its_processed_event(
    client: TestClient, tenant: Tenant, sendgrid: SendgridSender, event: str, df_event: str
) -> None:
    key = _keyed(client, sendgrid, tenant.id)
    assert sendgrid.status(key, tags(tenant.id), event="processed").post(client).status_code == 200
    late = sendgrid.event({}, event, reason="500 unknown recipient", status="5.0.0")
    del late["sg_message_id"]
    assert sendgrid.batch(key, [late]).post(client).status_code == 200
    by_event = {row[0]: row for row in status_events(client, tenant.id)}
    assert sorted(by_event) == sorted(["DFEmailProcessed", df_event])
    joined = by_event[df_event]
    assert joined[:3] == (df_event, SEND_ID, "user-1")
    assert joined[4] == {"email": "example@test.com", **tags(tenant.id)}


def test_sendgrid_joined_bounce_must_be_signed_by_that_workspaces_key(
    client: TestClient, tenant: Tenant, tenant_b: Tenant, sendgrid: SendgridSender
) -> None:
    key_a, key_b = _keyed(client, sendgrid, tenant.id), _keyed(client, sendgrid, tenant_b.id)
    sendgrid.status(key_a, tags(tenant.id), event="processed").post(client)
    response = sendgrid.batch(key_b, [sendgrid.event({}, "bounce")]).post(client)
    assert (response.status_code, response.json()) == (400, {"message": "Invalid signature."})
    assert [row[0] for row in status_events(client, tenant.id)] == ["DFEmailProcessed"]
    assert status_events(client, tenant_b.id) == []


def test_sendgrid_batch_from_a_parents_account_goes_to_each_child(
    client: TestClient, parent: ParentAccount, tenant: Tenant, tenant_b: Tenant, sendgrid: SendgridSender
) -> None:
    key = _keyed(client, sendgrid, parent.id)
    events = [sendgrid.event(tags(tenant.id)), sendgrid.event(tags(tenant_b.id, "user-b"), "open")]
    assert sendgrid.batch(key, events).post(client).status_code == 200
    assert [row[:3] for row in status_events(client, tenant.id)] == [("DFEmailDelivered", SEND_ID, "user-1")]
    assert [row[:3] for row in status_events(client, tenant_b.id)] == [("DFEmailOpened", SEND_ID, "user-b")]


def test_sendgrid_batch_signed_by_one_child_writes_only_that_childs_events(
    client: TestClient, tenant: Tenant, tenant_b: Tenant, sendgrid: SendgridSender
) -> None:
    key_a = _keyed(client, sendgrid, tenant.id)
    _keyed(client, sendgrid, tenant_b.id)
    events = [sendgrid.event(tags(tenant.id)), sendgrid.event(tags(tenant_b.id, "user-b"))]
    assert sendgrid.batch(key_a, events).post(client).status_code == 200
    assert len(status_events(client, tenant.id)) == 1
    assert status_events(client, tenant_b.id) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no workspace", "Missing workspaceId custom arg."),
        ("no signature header", "Missing signature headers."),
        ("not an array", "body must be an array of event objects"),
    ],
)
def test_sendgrid_malformed_deliveries_are_400(
    client: TestClient, tenant: Tenant, sendgrid: SendgridSender, change: str, message: str
) -> None:
    key = _keyed(client, sendgrid, tenant.id)
    delivery = sendgrid.status(key, tags(tenant.id))
    if change == "no workspace":
        delivery = sendgrid.batch(key, [sendgrid.event({"userId": "user-1"})])
    elif change == "no signature header":
        del delivery.headers["x-twilio-email-event-webhook-signature"]
    else:
        delivery = sendgrid.batch(key, [])
        delivery = type(delivery)(delivery.path, b'{"event": "open"}', delivery.headers)
    response = delivery.post(client)
    assert (response.status_code, response.json()["message"]) == (400, message)


# -- Resend -----------------------------------------------------------------------------------------


@pytest.fixture
def resend(client: TestClient) -> ResendSender:
    return ResendSender(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "df_event"),
    [
        ("email.opened", "DFEmailOpened"),
        ("email.clicked", "DFEmailClicked"),
        ("email.bounced", "DFEmailBounced"),
        ("email.delivery_delayed", "DFEmailDropped"),
        ("email.complained", "DFEmailMarkedSpam"),
        ("email.sent", None),
    ],
)
def test_resend_event_types(
    client: TestClient, tenant: Tenant, resend: ResendSender, event: str, df_event: str | None
) -> None:
    key = _keyed(client, resend, tenant.id)
    assert resend.status(key, tags(tenant.id), event=event).post(client).status_code == 200
    assert [row[0] for row in status_events(client, tenant.id)] == ([df_event] if df_event else [])


def test_resend_without_a_workspace_tag_is_a_no_op(client: TestClient, resend: ResendSender) -> None:
    response = resend.status(resend.new_key(), {"userId": "user-1"}).post(client)
    assert (response.status_code, response.content) == (200, b"")


def test_resend_refuses_a_timestamp_older_than_five_minutes(
    client: TestClient, tenant: Tenant, resend: ResendSender
) -> None:
    key = _keyed(client, resend, tenant.id)
    stale = resend.status(key, tags(tenant.id), sent_at=int(time.time()) - 6 * 60)
    assert stale.post(client).status_code == 401
    assert status_events(client, tenant.id) == []


def test_resend_without_svix_headers_is_400(client: TestClient, tenant: Tenant, resend: ResendSender) -> None:
    delivery = resend.status(_keyed(client, resend, tenant.id), tags(tenant.id))
    del delivery.headers["svix-signature"]
    response = delivery.post(client)
    assert (response.status_code, response.json()["message"]) == (
        400,
        "headers must have required property 'svix-signature'",
    )


# -- Postmark ---------------------------------------------------------------------------------------


def test_postmark_needs_a_workspace_in_metadata_and_the_secret_header(
    client: TestClient, tenant: Tenant
) -> None:
    postmark = PostmarkSender(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]
    key = _keyed(client, postmark, tenant.id)
    response = postmark.status(key, {"userId": "user-1"}).post(client)
    assert (response.status_code, response.json()["message"]) == (400, "Missing workspaceId in Metadata.")
    delivery = postmark.status(key, tags(tenant.id))
    del delivery.headers["x-postmark-secret"]
    assert delivery.post(client).status_code == 400
    assert status_events(client, tenant.id) == []


@pytest.mark.parametrize(
    ("record_type", "time_field", "df_event"),
    [
        ("Open", "ReceivedAt", "DFEmailOpened"),
        ("Click", "ReceivedAt", "DFEmailClicked"),
        ("Bounce", "BouncedAt", "DFEmailBounced"),
        ("SpamComplaint", "BouncedAt", "DFEmailMarkedSpam"),
    ],
)
def test_postmark_record_types_and_their_times(
    client: TestClient, tenant: Tenant, record_type: str, time_field: str, df_event: str
) -> None:
    postmark = PostmarkSender(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]
    key = _keyed(client, postmark, tenant.id)
    delivery = postmark.status(key, tags(tenant.id), event=record_type)
    body = json.loads(delivery.body)
    body[time_field] = body.pop("DeliveredAt").replace("16:33", "17:45")
    body["Email"] = body.pop("Recipient")
    delivery = type(delivery)(delivery.path, json.dumps(body).encode(), delivery.headers)
    assert delivery.post(client).status_code == 200
    ((event, _, _, event_time, properties, _),) = status_events(client, tenant.id)
    assert (event, event_time, properties["email"]) == (
        df_event,
        "2019-11-05 17:45:54.907",
        "example@test.com",
    )


# -- Mandrill ---------------------------------------------------------------------------------------


@pytest.fixture
def mandrill(client: TestClient) -> MandrillSender:
    return MandrillSender(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]


def test_mandrill_checks_the_url_with_a_head_request(client: TestClient) -> None:
    assert client.head(f"{PUBLIC_MOUNT}/mailchimp").status_code == 200


def test_mandrill_events_of_another_workspace_in_a_signed_batch_are_not_written(
    client: TestClient, tenant: Tenant, tenant_b: Tenant, mandrill: MandrillSender
) -> None:
    key_a = _keyed(client, mandrill, tenant.id)
    events = [
        mandrill.event(tags(tenant.id), "open", "m-a"),
        mandrill.event(tags(tenant_b.id), "open", "m-b"),
        mandrill.event(tags(tenant.id), "send", "m-c"),
        mandrill.event(tags(tenant.id), "hard_bounce", "m-d"),
        mandrill.event(tags(tenant.id), "spam", "m-e"),
        mandrill.event(tags(tenant.id), "click", "m-f"),
    ]
    assert mandrill.batch(key_a, events).post(client).status_code == 200
    written = sorted(row[0] for row in status_events(client, tenant.id))
    assert written == ["DFEmailBounced", "DFEmailClicked", "DFEmailMarkedSpam", "DFEmailOpened"]
    assert status_events(client, tenant_b.id) == []


def test_mandrill_signs_the_public_url_not_the_request_host(
    client: TestClient, tenant: Tenant, mandrill: MandrillSender
) -> None:
    key = _keyed(client, mandrill, tenant.id)
    as_seen_by_the_server = MandrillSender("http://testserver")
    assert as_seen_by_the_server.status(key, tags(tenant.id)).post(client).status_code == 401


# -- Twilio -----------------------------------------------------------------------------------------


@pytest.fixture
def twilio(client: TestClient) -> TwilioSender:
    return TwilioSender(client.app.state.settings.dashboard_url)  # type: ignore[attr-defined]


def test_twilio_failed_and_other_statuses(client: TestClient, tenant: Tenant, twilio: TwilioSender) -> None:
    key = _keyed(client, twilio, tenant.id)
    for status in ("queued", "sent", "failed"):
        assert twilio.status(key, tags(tenant.id), event=status).post(client).status_code == 200
    assert [row[0] for row in status_events(client, tenant.id)] == ["DFSmsFailed"]


def test_twilio_secret_missing_a_required_field_is_503(
    client: TestClient, tenant: Tenant, twilio: TwilioSender
) -> None:
    key = twilio.new_key()
    put_secret(
        client, tenant.id, "twilio-key", {k: v for k, v in key.config.items() if k != "messagingServiceSid"}
    )
    response = twilio.status(key, tags(tenant.id)).post(client)
    assert (response.status_code, response.json()) == (503, {"message": "Twilio configuration not found"})


def test_twilio_needs_the_workspace_in_the_query(
    client: TestClient, tenant: Tenant, twilio: TwilioSender
) -> None:
    key = _keyed(client, twilio, tenant.id)
    response = twilio.status(key, {"userId": "user-1"}).post(client)
    assert response.status_code == 400
    assert "workspaceId" in response.json()["message"]


def test_twilio_signs_the_public_url_not_the_request_host(
    client: TestClient, tenant: Tenant, twilio: TwilioSender
) -> None:
    key = _keyed(client, twilio, tenant.id)
    assert TwilioSender("http://testserver").status(key, tags(tenant.id)).post(client).status_code == 401


# -- the public URL that Mandrill and Twilio sign ---------------------------------------------------


@pytest.mark.parametrize("kind", [MandrillSender, TwilioSender], ids=lambda kind: kind.provider)
def test_url_signing_providers_sign_dashboard_url_plus_api_prefix(
    settings: Settings, kind: type[Sender]
) -> None:
    behind_a_prefix = replace(settings, dashboard_url="https://engage.example.com", api_prefix="/feedgate")
    with TestClient(create_app(behind_a_prefix, run_worker=False)) as client:
        tenant = make_parent(client, "Parent SaaS").put_child("Tenant A", "tenant-a")
        sender = kind("https://engage.example.com")
        key = _keyed(client, sender, tenant.id)
        response = sender.status(key, tags(tenant.id), mount=f"/feedgate{PUBLIC_MOUNT}").post(client)
        assert response.status_code == 200
        assert [row[0] for row in status_events(client, tenant.id)] == [sender.df_event]
