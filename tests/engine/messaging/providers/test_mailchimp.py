"""Mailchimp Transactional (Mandrill): messages/send, its answers, and the outcomes they become."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.mailchimp import build_mailchimp
from tests.engine.messaging.providers.samples import ATTACHMENT, TAGS, sample_email
from tests.support.provider_servers import MANDRILL_API_KEY, ProviderServers

CONFIG = {"apiKey": MANDRILL_API_KEY}


def test_a_send_posts_the_documented_messages_send_request(
    servers: ProviderServers, context: ProviderContext
) -> None:
    details = build_mailchimp(CONFIG, context).send_email(sample_email())

    request = servers.last("mandrill")
    assert (request.method, request.path) == ("POST", "/api/1.0/messages/send.json")
    body = request.json()
    assert body["key"] == MANDRILL_API_KEY
    message = body["message"]
    assert (message["from_email"], message["from_name"]) == ("ana@acme.example", "Ana from Acme")
    assert message["to"] == [
        {"email": "bruno@customer.example", "type": "to"},
        {"email": "carla@customer.example", "type": "cc"},
        {"email": "audit@acme.example", "type": "bcc"},
    ]
    assert message["preserve_recipients"] is True  # otherwise the Cc header is dropped
    assert (message["subject"], message["html"]) == ("Your invoice", sample_email().body)
    assert message["headers"] == {
        "X-Campaign": "spring",
        "List-Unsubscribe": "<https://acme.example/u/1>",
        "Reply-To": "support@acme.example",
    }
    assert message["metadata"] == TAGS
    assert message["attachments"] == [
        {
            "type": "application/pdf",
            "name": "invoice.pdf",
            "content": base64.b64encode(ATTACHMENT.data).decode(),
        }
    ]
    assert details["type"] == "MailChimp"
    assert len(details["messageId"]) == 32


@pytest.mark.parametrize("status", ["rejected", "invalid"])
def test_a_recipient_mandrill_will_not_deliver_to_is_rejected(
    status: str, servers: ProviderServers, context: ProviderContext
) -> None:
    result: dict[str, Any] = {
        "email": "bruno@customer.example",
        "status": status,
        "_id": "ab12",
        "reject_reason": None,
    }
    if status == "rejected":
        result["reject_reason"] = "hard-bounce"
    servers.answer_next("mandrill", 200, [result])

    with pytest.raises(ProviderRejected) as refused:
        build_mailchimp(CONFIG, context).send_email(sample_email())

    expected_reason = "hard-bounce" if status == "rejected" else "invalid"
    assert refused.value.details == {"type": "MailChimp", "name": status, "message": expected_reason}


def test_a_queued_message_is_a_success(servers: ProviderServers, context: ProviderContext) -> None:
    servers.answer_next(
        "mandrill",
        200,
        [{"email": "bruno@customer.example", "status": "queued", "_id": "cd34", "reject_reason": None}],
    )

    assert build_mailchimp(CONFIG, context).send_email(sample_email()) == {
        "type": "MailChimp",
        "messageId": "cd34",
    }


def test_an_invalid_key_is_rejected_without_showing_it(context: ProviderContext) -> None:
    wrong_key = "md-not-the-right-key-777"
    with pytest.raises(ProviderRejected) as refused:
        build_mailchimp({"apiKey": wrong_key}, context).send_email(sample_email())

    assert refused.value.details == {"type": "MailChimp", "name": "Invalid_Key", "message": "Invalid API key"}
    assert wrong_key not in str(refused.value)


def test_a_validation_error_is_rejected(context: ProviderContext) -> None:
    with pytest.raises(ProviderRejected) as refused:
        build_mailchimp(CONFIG, context).send_email(sample_email(from_address="not-an-address"))

    assert refused.value.details["name"] == "ValidationError"


@pytest.mark.parametrize("status", [500, 503])
def test_a_general_error_or_a_proxy_failure_is_transient(
    status: int, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("mandrill", status)

    with pytest.raises(ProviderUnavailable):
        build_mailchimp(CONFIG, context).send_email(sample_email())


def test_throttling_is_transient(servers: ProviderServers, context: ProviderContext) -> None:
    servers.answer_next("mandrill", 429, {"status": "error", "name": "Rate_Limit", "message": "slow down"})

    with pytest.raises(ProviderUnavailable):
        build_mailchimp(CONFIG, context).send_email(sample_email())


def test_a_configuration_without_api_key_is_misconfigured(context: ProviderContext) -> None:
    with pytest.raises(ProviderMisconfigured, match="apiKey"):
        build_mailchimp({}, context)
