"""Postmark: the Email API request, its answers, and the outcomes they become."""

from __future__ import annotations

import base64

import pytest

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.postmark import build_postmark
from tests.engine.messaging.providers.samples import ATTACHMENT, TAGS, sample_email
from tests.support.provider_servers import POSTMARK_SERVER_TOKEN, ProviderServers

CONFIG = {"apiKey": POSTMARK_SERVER_TOKEN}


def test_a_send_posts_the_documented_email_request(
    servers: ProviderServers, context: ProviderContext
) -> None:
    details = build_postmark(CONFIG, context).send_email(sample_email())

    request = servers.last("postmark")
    assert (request.method, request.path) == ("POST", "/email")
    assert request.headers["x-postmark-server-token"] == POSTMARK_SERVER_TOKEN
    assert request.headers["accept"] == "application/json"
    body = request.json()
    assert body["From"] == "Ana from Acme <ana@acme.example>"
    assert (body["To"], body["Cc"], body["Bcc"]) == (
        "bruno@customer.example",
        "carla@customer.example",
        "audit@acme.example",
    )
    assert (body["Subject"], body["HtmlBody"], body["ReplyTo"]) == (
        "Your invoice",
        sample_email().body,
        "support@acme.example",
    )
    assert body["Headers"] == [
        {"Name": "X-Campaign", "Value": "spring"},
        {"Name": "List-Unsubscribe", "Value": "<https://acme.example/u/1>"},
    ]
    assert body["Metadata"] == {name: value for name, value in TAGS.items() if name != "channel"}
    assert body["MessageStream"] == "outbound"
    assert body["Attachments"] == [
        {
            "Name": "invoice.pdf",
            "Content": base64.b64encode(ATTACHMENT.data).decode(),
            "ContentType": "application/pdf",
        }
    ]
    assert details["type"] == "PostMark"
    assert len(details["messageId"]) == 36


def test_the_configured_message_stream_is_used(servers: ProviderServers, context: ProviderContext) -> None:
    build_postmark({**CONFIG, "messageStream": "broadcast"}, context).send_email(sample_email())

    assert servers.last("postmark").json()["MessageStream"] == "broadcast"


def test_a_display_name_with_a_comma_is_quoted(servers: ProviderServers, context: ProviderContext) -> None:
    build_postmark(CONFIG, context).send_email(sample_email(name='Acme, "the" shop'))

    assert servers.last("postmark").json()["From"] == '"Acme, \\"the\\" shop" <ana@acme.example>'


def test_a_message_without_name_or_extras_sends_the_bare_address(
    servers: ProviderServers, context: ProviderContext
) -> None:
    message = sample_email(name=None, cc=(), bcc=(), reply_to=None, headers={}, attachments=(), tags={})
    build_postmark(CONFIG, context).send_email(message)

    body = servers.last("postmark").json()
    assert body["From"] == "ana@acme.example"
    assert set(body) == {"From", "To", "Subject", "HtmlBody", "MessageStream"}


def test_a_refusal_is_rejected_with_postmark_error_code_and_message(
    servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("postmark", 422)

    with pytest.raises(ProviderRejected) as refused:
        build_postmark(CONFIG, context).send_email(sample_email())

    assert refused.value.details == {
        "type": "PostMark",
        "name": "406",
        "message": "You tried to send to recipient(s) marked as inactive.",
    }


def test_an_error_code_inside_a_200_answer_is_a_rejection(
    servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("postmark", 200, {"ErrorCode": 300, "Message": "Invalid email request"})

    with pytest.raises(ProviderRejected) as refused:
        build_postmark(CONFIG, context).send_email(sample_email())

    assert refused.value.details["name"] == "300"


def test_a_wrong_server_token_is_rejected_without_showing_it(context: ProviderContext) -> None:
    wrong_token = "not-the-server-token-5555"
    with pytest.raises(ProviderRejected) as refused:
        build_postmark({"apiKey": wrong_token}, context).send_email(sample_email())

    assert refused.value.details["name"] == "10"
    assert wrong_token not in str(refused.value) + str(refused.value.details)


@pytest.mark.parametrize("status", [429, 500])
def test_throttling_and_server_errors_are_transient(
    status: int, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("postmark", status)

    with pytest.raises(ProviderUnavailable):
        build_postmark(CONFIG, context).send_email(sample_email())


def test_a_configuration_without_api_key_is_misconfigured(context: ProviderContext) -> None:
    with pytest.raises(ProviderMisconfigured, match="apiKey"):
        build_postmark({"messageStream": "outbound"}, context)
