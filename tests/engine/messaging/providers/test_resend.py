"""Resend: the POST /emails request, its answers, and the outcomes they become."""

from __future__ import annotations

import base64

import pytest

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.resend import build_resend, resend_tag_text
from tests.engine.messaging.providers.samples import ATTACHMENT, TAGS, sample_email
from tests.support.provider_servers import RESEND_API_KEY, ProviderServers

CONFIG = {"apiKey": RESEND_API_KEY}


def test_a_send_posts_the_documented_emails_request(
    servers: ProviderServers, context: ProviderContext
) -> None:
    details = build_resend(CONFIG, context).send_email(sample_email())

    request = servers.last("resend")
    assert (request.method, request.path) == ("POST", "/emails")
    assert request.headers["authorization"] == f"Bearer {RESEND_API_KEY}"
    body = request.json()
    assert body["from"] == "Ana from Acme <ana@acme.example>"
    assert (body["to"], body["cc"], body["bcc"]) == (
        ["bruno@customer.example"],
        ["carla@customer.example"],
        ["audit@acme.example"],
    )
    assert (body["subject"], body["html"], body["reply_to"]) == (
        "Your invoice",
        sample_email().body,
        "support@acme.example",
    )
    assert body["headers"] == {"X-Campaign": "spring", "List-Unsubscribe": "<https://acme.example/u/1>"}
    assert body["attachments"] == [
        {"filename": "invoice.pdf", "content": base64.b64encode(ATTACHMENT.data).decode()}
    ]
    tags = {tag["name"]: tag["value"] for tag in body["tags"]}
    assert tags == {**TAGS, "userId": "ana_lima_example_com"}  # '.' and '@' are not allowed in Resend tags
    assert details["type"] == "Resend"
    assert len(details["messageId"]) == 36


def test_tag_text_keeps_only_what_resend_allows() -> None:
    assert resend_tag_text("dfa7251b-2902-4985-9dae-ecb1d537d63e") == "dfa7251b-2902-4985-9dae-ecb1d537d63e"
    assert resend_tag_text("https://example.com/path") == "https___example_com_path"
    assert resend_tag_text("é" * 300) == "_" * 256


def test_a_refusal_is_rejected_with_resend_name_and_message(
    servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("resend", 422)

    with pytest.raises(ProviderRejected) as refused:
        build_resend(CONFIG, context).send_email(sample_email())

    assert refused.value.details == {
        "type": "Resend",
        "name": "validation_error",
        "message": "Invalid `to` field.",
    }


def test_a_wrong_api_key_is_rejected_without_showing_it(context: ProviderContext) -> None:
    wrong_key = "re_not_the_right_key_4321"
    with pytest.raises(ProviderRejected) as refused:
        build_resend({"apiKey": wrong_key}, context).send_email(sample_email())

    assert refused.value.details["name"] == "invalid_api_key"
    assert wrong_key not in str(refused.value) + str(refused.value.details)


@pytest.mark.parametrize("status", [429, 500])
def test_throttling_and_server_errors_are_transient(
    status: int, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("resend", status)

    with pytest.raises(ProviderUnavailable):
        build_resend(CONFIG, context).send_email(sample_email())


def test_a_configuration_without_api_key_is_misconfigured(context: ProviderContext) -> None:
    with pytest.raises(ProviderMisconfigured, match="apiKey"):
        build_resend({"webhookKey": "whsec_x"}, context)
