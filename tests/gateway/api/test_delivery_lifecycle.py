"""A message's life end to end (issue: messaging, "Done when"): sent through a real provider API
stand-in, found in the deliveries search as sent, then moved by the provider's signed webhooks to
delivered and opened; a replayed webhook changes nothing and a forged one is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.api.conftest import AdminApi, make_parent
from tests.gateway.api.webhook_senders import Key, SendgridSender, TwilioSender
from tests.support.provider_servers import (
    SENDGRID_API_KEY,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
    ProviderServers,
)


@pytest.fixture(scope="module")
def servers() -> Iterator[ProviderServers]:
    running = ProviderServers().start()
    yield running
    running.stop()


@pytest.fixture
def client(settings: Settings, servers: ProviderServers) -> Iterator[TestClient]:
    endpoints = {"SendGrid": servers.url, "Twilio": servers.url}
    with TestClient(create_app(replace(settings, provider_endpoints=endpoints), run_worker=False)) as client:
        yield client


class Tenant:
    def __init__(self, client: TestClient) -> None:
        parent = make_parent(client, "Lifecycle")
        self.id = parent.put_child("T", "t").id
        self.api = AdminApi(client, parent.admin_key, self.id)

    def configure(self, path: str, config: dict[str, str]) -> None:
        response = self.api.call("PUT", f"/api/admin/settings/{path}", config=config, setDefault=True)
        assert response.status_code == 201, response.text

    def send(self, channel: str, definition: dict[str, Any], properties: dict[str, Any]) -> dict[str, str]:
        template = self.api.call("PUT", "/api/admin/content/templates", name=channel, definition=definition)
        template_id = template.json()["id"]
        users = [{"id": "user-1", "messageId": f"send-{channel}", "properties": properties}]
        response = self.api.call(
            "POST",
            "/api/admin/content/templates/batch-send",
            templateId=template_id,
            channel=channel,
            users=users,
        )
        assert response.json()["results"][0]["type"] == "Success", response.text
        return {
            "workspaceId": self.id,
            "messageId": f"send-{channel}",
            "userId": "user-1",
            "templateId": template_id,
        }

    def status(self) -> str:
        response = self.api.get("/api/admin/deliveries")
        (item,) = response.json()["items"]
        return str(item["status"])


def test_an_email_through_sendgrid_moves_from_sent_to_delivered_to_opened(client: TestClient) -> None:
    tenant, sender = Tenant(client), SendgridSender("http://localhost:3000")
    key = sender.new_key()
    tenant.configure("email-providers", {**key.config, "apiKey": SENDGRID_API_KEY})
    email = {"type": "Email", "from": "a@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}
    tags = tenant.send("Email", email, {"email": "example@test.com"})
    assert tenant.status() == "DFInternalMessageSent"

    delivered = sender.batch(key, [sender.event(tags, "delivered", timestamp=1_900_000_000)])
    assert delivered.post(client).status_code == 200
    assert tenant.status() == "DFEmailDelivered"
    opened = sender.batch(key, [sender.event(tags, "open", timestamp=1_900_000_060)])
    assert opened.post(client).status_code == 200
    assert tenant.status() == "DFEmailOpened"

    assert delivered.post(client).status_code == 200  # a replay
    forged = sender.batch(sender.new_key(), [sender.event(tags, "bounce", timestamp=1_900_000_120)])
    assert forged.post(client).status_code == 400
    assert tenant.status() == "DFEmailOpened"
    count = tenant.api.get("/api/admin/deliveries/count", statuses=["DFEmailOpened"]).json()
    assert count == {"count": 1}


def test_an_sms_through_twilio_moves_from_sent_to_delivered(
    client: TestClient, servers: ProviderServers
) -> None:
    tenant, sender = Tenant(client), TwilioSender("http://localhost:3000")
    config = {**sender.new_key().config, "accountSid": TWILIO_ACCOUNT_SID, "authToken": TWILIO_AUTH_TOKEN}
    key = Key(config, TWILIO_AUTH_TOKEN)
    tenant.configure("sms-providers", config)
    tags = tenant.send("Sms", {"type": "Sms", "body": "Code 1234"}, {"phone": "+15558675310"})
    assert tenant.status() == "DFInternalMessageSent"
    callback = servers.last("twilio").form()["StatusCallback"]
    assert f"messageId={tags['messageId']}" in callback and f"workspaceId={tenant.id}" in callback

    delivered = sender.status(key, tags)
    assert delivered.post(client).status_code == 200
    assert tenant.status() == "DFSmsDelivered"
    assert sender.forge(delivered).post(client).status_code == 401
    assert tenant.status() == "DFSmsDelivered"
