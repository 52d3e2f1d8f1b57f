"""SendGrid: the v3 Mail Send request, its answers, and the outcomes they become."""

from __future__ import annotations

import base64
import json

import pytest

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.registry import EMAIL_PROVIDERS
from engine.messaging.providers.sendgrid import build_sendgrid
from tests.engine.messaging.providers.samples import ATTACHMENT, TAGS, sample_email
from tests.support.net import free_port
from tests.support.provider_servers import DOCUMENTED_ERRORS, SENDGRID_API_KEY, ProviderServers

CONFIG = {"apiKey": SENDGRID_API_KEY}


def test_the_registry_builds_sendgrid_senders(context: ProviderContext) -> None:
    build = EMAIL_PROVIDERS["SendGrid"].build
    assert build is not None
    assert build(CONFIG, context).send_email(sample_email())["type"] == "SendGrid"


def test_a_send_posts_the_documented_mail_send_request(
    servers: ProviderServers, context: ProviderContext
) -> None:
    details = build_sendgrid(CONFIG, context).send_email(sample_email())

    request = servers.last("sendgrid")
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == f"Bearer {SENDGRID_API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["personalizations"] == [
        {
            "to": [{"email": "bruno@customer.example"}],
            "cc": [{"email": "carla@customer.example"}],
            "bcc": [{"email": "audit@acme.example"}],
            "custom_args": TAGS,
        }
    ]
    assert body["from"] == {"email": "ana@acme.example", "name": "Ana from Acme"}  # name kept apart
    assert body["reply_to"] == {"email": "support@acme.example"}
    assert body["subject"] == "Your invoice"
    assert body["content"] == [{"type": "text/html", "value": sample_email().body}]
    assert body["headers"] == {"X-Campaign": "spring", "List-Unsubscribe": "<https://acme.example/u/1>"}
    [attachment] = body["attachments"]
    assert base64.b64decode(attachment["content"]) == ATTACHMENT.data
    assert (attachment["filename"], attachment["type"], attachment["disposition"]) == (
        "invoice.pdf",
        "application/pdf",
        "attachment",
    )
    assert details["type"] == "SendGrid"
    assert isinstance(details["messageId"], str) and details["messageId"]


def test_a_minimal_message_sends_only_the_required_fields(
    servers: ProviderServers, context: ProviderContext
) -> None:
    message = sample_email(name=None, cc=(), bcc=(), reply_to=None, headers={}, attachments=(), tags={})
    build_sendgrid(CONFIG, context).send_email(message)

    body = servers.last("sendgrid").json()
    assert set(body) == {"personalizations", "from", "subject", "content"}
    assert body["personalizations"] == [{"to": [{"email": "bruno@customer.example"}]}]
    assert body["from"] == {"email": "ana@acme.example"}


def test_an_address_repeated_across_to_cc_and_bcc_is_sent_once(
    servers: ProviderServers, context: ProviderContext
) -> None:
    message = sample_email(
        cc=("Bruno@Customer.example", "carla@customer.example"), bcc=("carla@customer.example",)
    )
    build_sendgrid(CONFIG, context).send_email(message)

    [personalization] = servers.last("sendgrid").json()["personalizations"]
    assert personalization["cc"] == [{"email": "carla@customer.example"}]
    assert "bcc" not in personalization


def test_a_refusal_is_rejected_with_status_and_body(
    servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("sendgrid", 400)

    with pytest.raises(ProviderRejected) as refused:
        build_sendgrid(CONFIG, context).send_email(sample_email())

    assert refused.value.details["type"] == "SendGrid"
    assert refused.value.details["status"] == 400
    assert json.loads(refused.value.details["body"]) == DOCUMENTED_ERRORS["sendgrid"][400].body


def test_a_wrong_api_key_is_rejected_without_showing_the_key(context: ProviderContext) -> None:
    wrong_key = "SG.not-the-right-key-1234"
    with pytest.raises(ProviderRejected) as refused:
        build_sendgrid({"apiKey": wrong_key}, context).send_email(sample_email())

    assert refused.value.details["status"] == 401
    assert wrong_key not in str(refused.value) + json.dumps(refused.value.details)


@pytest.mark.parametrize("status", [429, 500])
def test_throttling_and_server_errors_are_transient(
    status: int, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("sendgrid", status)

    with pytest.raises(ProviderUnavailable):
        build_sendgrid(CONFIG, context).send_email(sample_email())


def test_an_unreachable_api_is_transient(context: ProviderContext) -> None:
    context.endpoints = {"SendGrid": f"http://127.0.0.1:{free_port()}"}

    with pytest.raises(ProviderUnavailable) as unreachable:
        build_sendgrid(CONFIG, context).send_email(sample_email())

    assert SENDGRID_API_KEY not in str(unreachable.value)


@pytest.mark.parametrize("config", [{}, {"apiKey": ""}, {"apiKey": 42}])
def test_a_configuration_without_api_key_is_misconfigured(
    config: dict[str, object], context: ProviderContext
) -> None:
    with pytest.raises(ProviderMisconfigured, match="apiKey"):
        build_sendgrid(config, context)


def test_an_api_key_no_header_can_carry_is_misconfigured(
    servers: ProviderServers, context: ProviderContext
) -> None:
    with pytest.raises(ProviderMisconfigured, match="header"):
        build_sendgrid({"apiKey": "SG.pasted\u2019key"}, context).send_email(sample_email())

    assert servers.sent("sendgrid") == []
