"""`content/templates/batch-send` and `content/templates/test` (Dittofeed §6.1, §7.6, §8.1): real sends
through the Test provider and a real SMTP server, the results answered and recorded, provider fallback
from child to parent, and retries that never message anyone twice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from engine.messaging.send import PARALLEL_SENDS
from engine.storage.models import Secret
from gateway.app import create_app
from gateway.settings import BlobStorageSettings
from gateway.settings import Settings as GatewaySettings
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, make_parent
from tests.support.net import ThreadedServer
from tests.support.smtp_sink import SmtpSink, running_smtp_sink

EMAIL = {
    "type": "Email",
    "from": "hello@acme.test",
    "subject": "Hi {{ user.firstName | default: 'there' }}",
    "body": "<p>Hello {{ user.firstName }}</p>{% unsubscribe_link %}",
}


class Content(AdminApi):
    prefix = "/api/admin/content/templates"

    def template(self, name: str, definition: dict[str, Any], draft: Any = None) -> str:
        body: dict[str, Any] = {"name": name, "definition": definition}
        if draft is not None:
            body["draft"] = draft
        response = self.call("PUT", **body)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def batch(self, template_id: str, users: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
        response = self.call(
            "POST",
            "/batch-send",
            templateId=template_id,
            channel=extra.pop("channel", "Email"),
            users=users,
            **extra,
        )
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


class Settings(AdminApi):
    prefix = "/api/admin/settings"


@pytest.fixture
def content(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Content:
    return Content(client, parent.admin_key, tenant.id)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_smtp_sink() as sink:
        yield sink


def configure_smtp(client: TestClient, key: str, workspace_id: str, sink: SmtpSink) -> None:
    settings = Settings(client, key, workspace_id)
    config = {"type": "Smtp", "host": "127.0.0.1", "port": str(sink.port)}
    response = settings.call("PUT", "/email-providers", config=config, setDefault=True)
    assert response.status_code == 201, response.text


def recorded(client: TestClient, workspace_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = client.app.state.event_store.query(  # type: ignore[attr-defined]
        "SELECT message_id, event, properties FROM internal_events WHERE workspace_id = {w:String}"
        " AND event != 'DFSubscriptionChange' ORDER BY message_id",
        {"w": workspace_id},
    )
    return [(str(m), str(e), json.loads(p)) for m, e, p in rows]


def user(user_id: str, **properties: Any) -> dict[str, Any]:
    return {"id": user_id, "messageId": f"m-{user_id}", "properties": properties}


def test_a_child_sends_through_its_parents_default_until_it_chooses_its_own(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    template = content.template("Welcome", EMAIL)
    first = content.batch(template, [user("u1", email="u1@x.test", firstName="Ada")])
    assert first == [{"userId": "u1", "messageId": "m-u1", "type": "Success"}]
    assert sink.received == []  # the parent's default is the Test provider

    configure_smtp(client, parent.admin_key, parent.id, sink)
    content.batch(template, [user("u2", email="u2@x.test", firstName="Bo")])
    assert [r.rcpt_tos for r in sink.received] == [["u2@x.test"]]

    with running_smtp_sink() as own:
        configure_smtp(client, parent.admin_key, tenant.id, own)
        content.batch(template, [user("u3", email="u3@x.test", firstName="Cy")])
        assert [r.rcpt_tos for r in own.received] == [["u3@x.test"]]
    assert len(sink.received) == 1


def test_smtp_send_renders_the_template_and_records_the_sent_event(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    template = content.template("Welcome", EMAIL)
    groups = client.get(
        "/api/admin/subscription-groups", params={"workspaceId": tenant.id}, headers=content.headers
    ).json()
    email_group = next(g for g in groups if g["channel"] == "Email")
    users = [user(f"u{i}", email=f"u{i}@x.test", firstName=f"N{i}") for i in range(3)]

    results = content.batch(template, users, subscriptionGroupId=email_group["id"])

    assert [r["type"] for r in results] == ["Success"] * 3
    received = {r.rcpt_tos[0]: r.message for r in sink.received}
    message = received["u1@x.test"]
    assert message["Subject"] == "Hi N1"
    assert message["From"] == "hello@acme.test"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<http") and f"s={email_group['id']}" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email_group["id"] in message["List-ID"]
    body = message.get_body(("html",))
    assert body is not None and "Hello N1" in body.get_content()

    events = recorded(client, tenant.id)
    assert [(m, e) for m, e, _ in events] == [(f"m-u{i}", "DFInternalMessageSent") for i in range(3)]
    properties = events[1][2]
    assert properties["templateId"] == template and properties["userId"] == "u1"
    variant = properties["variant"]
    assert (variant["type"], variant["to"], variant["subject"]) == ("Email", "u1@x.test", "Hi N1")
    assert variant["provider"]["type"] == "Smtp"


def test_a_batch_keeps_several_smtp_sends_in_flight_over_connections_it_reuses(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    template = content.template("Welcome", EMAIL)
    sink.data_delay = 0.2  # a server that takes its time to accept each message

    first = [user(f"u{i}", email=f"u{i}@x.test", firstName=f"N{i}") for i in range(8)]
    assert [r["type"] for r in content.batch(template, first)] == ["Success"] * 8
    assert 1 < sink.most_in_flight <= PARALLEL_SENDS
    opened = sink.connections
    assert opened <= PARALLEL_SENDS

    second = [user(f"v{i}", email=f"v{i}@x.test", firstName=f"N{i}") for i in range(8)]
    assert [r["type"] for r in content.batch(template, second)] == ["Success"] * 8
    assert len(sink.received) == 16
    assert sink.connections == opened  # the second batch opened no connection of its own


def test_a_retried_batch_sends_nobody_twice(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    template = content.template("Welcome", EMAIL)
    users = [user("u1", email="u1@x.test", firstName="A"), user("u2", email="u2@x.test", firstName="B")]
    first = content.batch(template, users)
    again = content.batch(template, [*users, user("u3", email="u3@x.test", firstName="C")])
    assert again[:2] == first
    assert again[2]["type"] == "Success"
    assert sorted(r.rcpt_tos[0] for r in sink.received) == ["u1@x.test", "u2@x.test", "u3@x.test"]
    assert len(recorded(client, tenant.id)) == 3


def test_each_kind_of_failure_is_answered_and_recorded_as_dittofeed_does(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    sink.refuse.add("gone@x.test")
    good = content.template("Good", EMAIL)
    broken = content.template("Broken", {**EMAIL, "subject": "{{ user.firstName | nosuchfilter }}"})

    refused, no_address = content.batch(good, [user("r", email="gone@x.test", firstName="R"), user("n")])
    (unrenderable,) = content.batch(broken, [user("b", email="b@x.test", firstName="B")])
    (no_template,) = content.batch("8a7b3c1e-0000-4000-8000-000000000000", [user("t", email="t@x.test")])

    assert refused["type"] == "NonRetryableError"
    assert refused["error"]["type"] == "DFMessageFailure"
    assert refused["error"]["variant"]["provider"]["type"] == "Smtp"
    assert refused["error"]["variant"]["provider"]["message"].startswith("550")
    assert no_address["type"] == "RetryableError"  # upstream surfaces skips as retryable, unrecorded
    assert unrenderable["error"]["variant"]["type"] == "MessageTemplateRenderError"
    assert unrenderable["error"]["variant"]["field"] == "subject"
    assert no_template["error"]["variant"] == {"type": "MessageTemplateNotFound"}
    events = {m: e for m, e, _ in recorded(client, tenant.id)}
    assert events == {
        "m-r": "DFMessageFailure",
        "m-b": "DFBadWorkspaceConfiguration",
        "m-t": "DFBadWorkspaceConfiguration",
    }
    assert sink.received == []


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def test_hostile_trait_values_render_inert_in_the_email(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    template = content.template("Welcome", EMAIL)
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>{{ 7 | times: 6 }}{% raw %}"
    content.batch(template, [user("h", email="h@x.test", firstName=hostile)])
    body = sink.received[0].message.get_body(("html",))
    assert body is not None
    parsed = _Elements()
    parsed.feed(body.get_content())
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert hostile in parsed.text  # shown as text, Liquid inside it not evaluated


def test_test_send_uses_the_draft_and_records_nothing(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    template = content.template(
        "Welcome", EMAIL, draft={**EMAIL, "subject": "Draft for {{ user.firstName }}"}
    )
    response = content.call(
        "POST",
        "/test",
        templateId=template,
        channel="Email",
        userProperties={"email": "me@x.test", "firstName": "Me"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "Ok"
    assert answer["value"]["subject"] == "Draft for Me"
    assert sink.received[0].message["Subject"] == "Draft for Me"
    assert "isPreview=true" in sink.received[0].message["List-Unsubscribe"]
    assert recorded(client, tenant.id) == []

    failed = content.call("POST", "/test", templateId=template, channel="Email", userProperties={}).json()
    assert failed["type"] == "Err"
    assert "email" in failed["err"]["suggestions"][0]


def test_sms_through_the_test_provider_and_a_provider_that_is_not_configured(
    client: TestClient, content: Content, tenant: Tenant
) -> None:
    template = content.template("Text", {"type": "Sms", "body": "Code {{ user.code }}"})
    (sent,) = content.batch(template, [user("s", phone="+15550001", code="42")], channel="Sms")
    assert sent["type"] == "Success"
    variant = recorded(client, tenant.id)[0][2]["variant"]
    assert variant == {"type": "Sms", "to": "+15550001", "body": "Code 42", "provider": {"type": "Test"}}

    (missing,) = content.batch(template, [user("t", phone="+15550002")], channel="Sms", provider="Twilio")
    assert missing["error"]["variant"]["type"] == "MessageServiceProviderNotFound"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "Fax"}, "channel"),
        ({"users": [{"properties": {}}]}, "id"),
        ({"provider": "Pigeon"}, "provider"),
    ],
)
def test_malformed_batch_requests_are_400s_naming_the_field(
    content: Content, change: dict[str, Any], field: str
) -> None:
    body = {"templateId": "t", "channel": "Email", "users": [], **change}
    response = content.call("POST", "/batch-send", **body)
    assert response.status_code == 400, response.text
    assert field in response.text


LOW_CODE = {
    "type": "Email",
    "emailContentsType": "LowCode",
    "from": "hello@acme.test",
    "subject": "Low code",
    "attachmentUserProperties": ["invoice"],
    "body": {
        "type": "doc",
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Hi {{ user.firstName }}"}]},
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "View online",
                        "marks": [{"type": "link", "attrs": {"href": "{% view_in_browser_url %}"}}],
                    }
                ],
            },
        ],
    },
}


@pytest.fixture
def blob_client(settings: GatewaySettings) -> Iterator[TestClient]:
    with TestClient(
        create_app(replace(settings, blob_storage=BlobStorageSettings(enabled=True)), run_worker=False)
    ) as c:
        yield c


def test_a_low_code_email_with_an_attachment_and_a_view_in_browser_link(
    blob_client: TestClient, sink: SmtpSink
) -> None:
    parent = make_parent(blob_client, "Blobs")
    tenant = parent.put_child("T", "t")
    configure_smtp(blob_client, parent.admin_key, tenant.id, sink)
    content = Content(blob_client, parent.admin_key, tenant.id)
    template = content.template("Low", LOW_CODE)
    invoice = {"type": "Base64Encoded", "name": "invoice.txt", "mimeType": "text/plain", "data": "UGFpZA=="}

    (sent,) = content.batch(template, [user("a", email="a@x.test", firstName="Ada", invoice=invoice)])

    assert sent["type"] == "Success", sent
    mime = sink.received[0].message
    html = mime.get_body(("html",))
    assert html is not None and "Hi Ada" in html.get_content()
    (attachment,) = mime.iter_attachments()
    assert (attachment.get_filename(), attachment.get_payload(decode=True)) == ("invoice.txt", b"Paid")
    link = urlsplit(unescape(re.findall(r'href="([^"]*view-in-browser[^"]*)"', html.get_content())[0]))
    viewed = blob_client.get(f"{link.path}?{link.query}")
    assert viewed.status_code == 200
    assert "Hi Ada" in viewed.text


def test_a_webhook_message_sends_the_secret_but_never_records_it(
    client: TestClient, content: Content, tenant: Tenant
) -> None:
    calls: list[tuple[dict[str, str], Any]] = []

    async def hook(request: Request) -> JSONResponse:
        calls.append((dict(request.headers), await request.json()))
        return JSONResponse({"ok": True}, status_code=201)

    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        config = {"type": "Webhook", "TOKEN": "s3cr3t-token"}
        session.add(Secret(workspace_id=tenant.id, name="webhook-channel", config_value=config))
    server = ThreadedServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])).start()
    try:
        body = json.dumps(
            {
                "config": {"url": f"{server.url}/hook", "method": "POST", "data": {"to": "{{ user.email }}"}},
                "secret": {"headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"}},
            }
        )
        template = content.template("Hook", {"type": "Webhook", "identifierKey": "email", "body": body})
        (sent,) = content.batch(template, [user("w", email="w@x.test")], channel="Webhook")
    finally:
        server.stop()

    assert sent["type"] == "Success", sent
    ((headers, payload),) = calls
    assert payload == {"to": "w@x.test"}
    assert headers["authorization"] == "Bearer s3cr3t-token"
    assert headers["df-message-id"] == "m-w"
    variant = recorded(client, tenant.id)[0][2]["variant"]
    assert variant["type"] == "Webhook" and variant["response"]["status"] == 201
    assert "s3cr3t-token" not in json.dumps(variant)


def test_an_unsubscribed_user_is_skipped_and_nothing_is_sent(
    client: TestClient, content: Content, parent: ParentAccount, tenant: Tenant, sink: SmtpSink
) -> None:
    configure_smtp(client, parent.admin_key, tenant.id, sink)
    template = content.template("Welcome", EMAIL)
    groups = AdminApi(client, parent.admin_key, tenant.id)
    groups.prefix = "/api/admin/subscription-groups"
    email_group = next(g for g in groups.get().json() if g["channel"] == "Email")
    changes = [{"userId": "out", "changes": {email_group["id"]: False}}]
    assert groups.call("PUT", "/assignments", userUpdates=changes).status_code == 200

    people = [user("out", email="out@x.test", firstName="O"), user("in", email="in@x.test", firstName="I")]
    skipped, sent = content.batch(template, people, subscriptionGroupId=email_group["id"])

    assert skipped["type"] == "RetryableError" and "SubscriptionState" in skipped["error"]["message"]
    assert sent["type"] == "Success"
    assert [r.rcpt_tos for r in sink.received] == [["in@x.test"]]
    assert [m for m, _, _ in recorded(client, tenant.id)] == ["m-in"]
