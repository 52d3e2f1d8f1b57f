"""Amazon SES events through SNS (Dittofeed §5.2, §8.3): the SNS signature is checked against the
certificate SNS names (served here by a local stand-in with a self-signed certificate), the body is read
as JSON though SNS sends `text/plain`, subscriptions are confirmed by visiting the SubscribeURL, and
each SES event lands as a DF status event at the time of its own sub-object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.messaging.webhooks.sns import SnsVerifier
from tests.gateway.api.conftest import ParentAccount, Tenant
from tests.gateway.api.test_provider_webhooks import SEND_ID, put_secret, status_events, tags
from tests.gateway.api.webhook_senders import LEGACY_MOUNT, PUBLIC_MOUNT
from tests.support.sns_certificates import SnsStandIn

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-elses"
SES_MESSAGE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"


@pytest.fixture(scope="module")
def sns() -> Iterator[SnsStandIn]:
    stand_in = SnsStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def verified(client: TestClient, sns: SnsStandIn) -> TestClient:
    """The app, trusting certificates and subscribe URLs of the local stand-in."""
    client.app.state.sns_verifier = SnsVerifier(  # type: ignore[attr-defined]
        cert_url_pattern=sns.cert_url_pattern, subscribe_url_pattern=sns.subscribe_url_pattern
    )
    return client


def ses_event(event_type: str, message_tags: dict[str, str]) -> dict[str, Any]:
    """An SES event-publishing record as AWS documents it; tags are lists of values."""
    mail = {
        "timestamp": "2016-10-19T23:20:52.240Z",
        "source": "sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": SES_MESSAGE_ID,
        "destination": ["recipient@example.com"],
        "headersTruncated": False,
        "tags": {
            "ses:configuration-set": ["ConfigSet"],
            "ses:from-domain": ["example.com"],
            **{name: [value] for name, value in message_tags.items()},
        },
    }
    details: dict[str, dict[str, Any]] = {
        "Delivery": {
            "delivery": {
                "timestamp": "2016-10-19T23:21:04.133Z",
                "processingTimeMillis": 11893,
                "recipients": ["recipient@example.com"],
                "smtpResponse": "250 2.6.0 Message received",
            }
        },
        "Bounce": {
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{"emailAddress": "bounced@example.com", "action": "failed"}],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
            }
        },
        "Complaint": {
            "complaint": {
                "complainedRecipients": [{"emailAddress": "complained@example.com"}],
                "timestamp": "2017-08-05T00:41:03.000Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000001",
            }
        },
        "Open": {
            "open": {"ipAddress": "192.0.2.1", "timestamp": "2017-08-09T22:00:19.652Z", "userAgent": "x"}
        },
        "Click": {
            "click": {"ipAddress": "192.0.2.1", "link": "https://x", "timestamp": "2017-08-09T23:51:25.570Z"}
        },
        "Send": {"send": {}},
    }
    return {"eventType": event_type, "mail": mail, **details[event_type]}


def notification(
    sns: SnsStandIn,
    event: dict[str, Any],
    *,
    topic: str = TOPIC,
    version: str = "1",
    envelope_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
) -> dict[str, Any]:
    return sns.sign(
        {
            "Type": "Notification",
            "MessageId": envelope_id,
            "TopicArn": topic,
            "Message": json.dumps(event),
            "Timestamp": "2016-10-19T23:21:05.000Z",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        },
        version=version,
    )


def deliver(client: TestClient, message: dict[str, Any], mount: str = PUBLIC_MOUNT) -> Any:
    # SNS posts JSON as text/plain.
    headers = {"content-type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": str(message["Type"])}
    return client.post(f"{mount}/amazon-ses", content=json.dumps(message).encode(), headers=headers)


@pytest.mark.parametrize(("mount", "version"), [(PUBLIC_MOUNT, "1"), (LEGACY_MOUNT, "2")])
def test_a_signed_delivery_becomes_a_df_status_event(
    verified: TestClient, sns: SnsStandIn, tenant: Tenant, mount: str, version: str
) -> None:
    message = notification(sns, ses_event("Delivery", tags(tenant.id)), version=version)
    response = deliver(verified, message, mount)
    assert (response.status_code, response.content) == (200, b"")
    ((event, origin, user, event_time, properties, _),) = status_events(verified, tenant.id)
    assert (event, origin, user, event_time) == (
        "DFEmailDelivered",
        SEND_ID,
        "user-1",
        "2016-10-19 23:21:04.133",
    )
    assert properties == {"email": "recipient@example.com", **tags(tenant.id)}


@pytest.mark.parametrize(
    ("event_type", "df_event", "event_time", "email"),
    [
        ("Bounce", "DFEmailBounced", "2017-08-05 00:41:02.669", "bounced@example.com"),
        ("Complaint", "DFEmailMarkedSpam", "2017-08-05 00:41:03.000", "complained@example.com"),
        ("Open", "DFEmailOpened", "2017-08-09 22:00:19.652", "recipient@example.com"),
        ("Click", "DFEmailClicked", "2017-08-09 23:51:25.570", "recipient@example.com"),
    ],
)
def test_ses_event_types_and_their_times(
    verified: TestClient,
    sns: SnsStandIn,
    tenant: Tenant,
    event_type: str,
    df_event: str,
    event_time: str,
    email: str,
) -> None:
    assert deliver(verified, notification(sns, ses_event(event_type, tags(tenant.id)))).status_code == 200
    ((event, _, _, stored_time, properties, _),) = status_events(verified, tenant.id)
    assert (event, stored_time, properties["email"]) == (df_event, event_time, email)


def test_send_events_are_acknowledged_and_ignored(
    verified: TestClient, sns: SnsStandIn, tenant: Tenant
) -> None:
    assert deliver(verified, notification(sns, ses_event("Send", tags(tenant.id)))).status_code == 200
    assert status_events(verified, tenant.id) == []


def test_a_replayed_notification_is_stored_once(
    verified: TestClient, sns: SnsStandIn, tenant: Tenant
) -> None:
    message = notification(sns, ses_event("Delivery", tags(tenant.id)))
    for _ in range(3):
        assert deliver(verified, message).status_code == 200
    # The same SES event published again, in a new SNS envelope: still one event.
    again = notification(sns, ses_event("Delivery", tags(tenant.id)), envelope_id="another-envelope")
    assert deliver(verified, again).status_code == 200
    assert len(status_events(verified, tenant.id)) == 1


def test_a_tampered_notification_is_refused(verified: TestClient, sns: SnsStandIn, tenant: Tenant) -> None:
    message = notification(sns, ses_event("Delivery", tags(tenant.id)))
    forged = {**message, "Message": message["Message"].replace("user-1", "user-2")}
    response = deliver(verified, forged)
    assert (response.status_code, response.json()) == (401, {"message": "Invalid signature"})
    assert status_events(verified, tenant.id) == []


def test_a_certificate_outside_aws_is_refused_in_production(
    client: TestClient, sns: SnsStandIn, tenant: Tenant
) -> None:
    # No verifier configured: the production one, which allows only https://sns.<region>.amazonaws.com.
    before = len(sns.requests)
    response = deliver(client, notification(sns, ses_event("Delivery", tags(tenant.id))))
    assert response.status_code == 401
    assert len(sns.requests) == before
    assert status_events(client, tenant.id) == []


def test_a_subscription_is_confirmed_by_visiting_its_subscribe_url(
    verified: TestClient, sns: SnsStandIn
) -> None:
    subscribe_url = f"{sns.base_url}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb"
    confirmation = sns.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb",
            "TopicArn": TOPIC,
            "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
            "SubscribeURL": subscribe_url,
            "Timestamp": "2012-04-26T20:45:04.751Z",
        }
    )
    assert deliver(verified, confirmation).status_code == 200
    assert subscribe_url.removeprefix(sns.base_url) in sns.requests


def test_a_subscribe_url_outside_the_allowed_pattern_is_not_visited(
    verified: TestClient, sns: SnsStandIn
) -> None:
    # On the stand-in's host (so a visit would be seen), but not at a path the pattern allows.
    outside = f"{sns.base_url}/latest/meta-data/?Action=ConfirmSubscription"
    confirmation = sns.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1c",
            "Token": "t",
            "TopicArn": TOPIC,
            "Message": "subscribe",
            "SubscribeURL": outside,
            "Timestamp": "2012-04-26T20:45:04.751Z",
        }
    )
    response = deliver(verified, confirmation)
    assert (response.status_code, response.json()) == (401, {})
    assert outside.removeprefix(sns.base_url) not in sns.requests


def test_a_workspace_may_restrict_notifications_to_its_own_topic(
    verified: TestClient, sns: SnsStandIn, parent: ParentAccount, tenant: Tenant
) -> None:
    # Set on the parent, the restriction covers every child without its own.
    put_secret(
        verified, parent.id, "amazonses", {"type": "AmazonSes", "region": "us-east-1", "snsTopicArn": TOPIC}
    )
    from_elsewhere = notification(sns, ses_event("Delivery", tags(tenant.id)), topic=OTHER_TOPIC)
    assert deliver(verified, from_elsewhere).status_code == 401
    assert status_events(verified, tenant.id) == []
    assert deliver(verified, notification(sns, ses_event("Delivery", tags(tenant.id)))).status_code == 200
    assert len(status_events(verified, tenant.id)) == 1


def test_one_workspaces_topic_does_not_open_another_restricted_workspace(
    verified: TestClient, sns: SnsStandIn, parent: ParentAccount, tenant: Tenant
) -> None:
    tenant_b = parent.put_child("Tenant B", "tenant-b")
    put_secret(verified, tenant.id, "amazonses", {"type": "AmazonSes", "snsTopicArn": TOPIC})
    put_secret(verified, tenant_b.id, "amazonses", {"type": "AmazonSes", "snsTopicArn": OTHER_TOPIC})
    tagged_b_from_a = notification(sns, ses_event("Delivery", tags(tenant_b.id)), topic=TOPIC)
    assert deliver(verified, tagged_b_from_a).status_code == 401
    assert status_events(verified, tenant_b.id) == status_events(verified, tenant.id) == []


@pytest.mark.parametrize("who", ["parent", "untagged", "no user"])
def test_notifications_nobody_can_receive_are_acknowledged_and_dropped(
    verified: TestClient, sns: SnsStandIn, parent: ParentAccount, tenant: Tenant, who: str
) -> None:
    message_tags = {
        "parent": tags(parent.id),
        "untagged": {"userId": "user-1"},
        "no user": {"workspaceId": tenant.id},
    }[who]
    assert deliver(verified, notification(sns, ses_event("Delivery", message_tags))).status_code == 200
    assert status_events(verified, tenant.id) == status_events(verified, parent.id) == []


def test_a_notification_that_is_not_an_ses_event_is_400(verified: TestClient, sns: SnsStandIn) -> None:
    message = sns.sign({**notification(sns, {}), "Message": "Hello world!"})
    response = deliver(verified, message)
    assert (response.status_code, response.json()["message"]) == (400, "Message is not an Amazon SES event")


def test_a_body_that_is_not_json_is_400(verified: TestClient) -> None:
    response = verified.post(f"{PUBLIC_MOUNT}/amazon-ses", content=b"Type=Notification")
    assert response.status_code == 400
