"""Amazon SES: a SigV4-signed SES v2 SendEmail carrying a raw MIME message, and its outcomes.

The stand-in verifies the signature with the secret key, as SES does, so a successful send proves
the request was signed for the configured key, region and the `ses` service."""

from __future__ import annotations

import base64
import re
from email import message_from_bytes
from email.message import EmailMessage as MimeMessage
from email.policy import default as default_policy
from typing import Any

import pytest

from engine.messaging.providers.amazon_ses import build_amazon_ses, ses_tag_text
from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from tests.engine.messaging.providers.samples import ATTACHMENT, TAGS, sample_email
from tests.support.provider_servers import (
    SES_ACCESS_KEY_ID,
    SES_REGION,
    SES_SECRET_ACCESS_KEY,
    ProviderServers,
)

CONFIG = {"accessKeyId": SES_ACCESS_KEY_ID, "secretAccessKey": SES_SECRET_ACCESS_KEY, "region": SES_REGION}


def raw_message(body: dict[str, Any]) -> MimeMessage:
    mime = message_from_bytes(base64.b64decode(body["Content"]["Raw"]["Data"]), policy=default_policy)
    assert isinstance(mime, MimeMessage)
    return mime


def test_a_send_is_a_signed_ses_v2_send_email(servers: ProviderServers, context: ProviderContext) -> None:
    details = build_amazon_ses(CONFIG, context).send_email(sample_email())

    request = servers.last("ses")
    assert (request.method, request.path) == ("POST", "/v2/email/outbound-emails")
    assert re.fullmatch(
        rf"AWS4-HMAC-SHA256 Credential={SES_ACCESS_KEY_ID}/\d{{8}}/{SES_REGION}/ses/aws4_request, "
        r"SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}",
        request.headers["authorization"],
    )
    body = request.json()
    assert body["FromEmailAddress"] == "ana@acme.example"
    assert body["Destination"] == {
        "ToAddresses": ["bruno@customer.example"],
        "CcAddresses": ["carla@customer.example"],
        "BccAddresses": ["audit@acme.example"],
    }
    assert {tag["Name"]: tag["Value"] for tag in body["EmailTags"]} == TAGS
    assert details["type"] == "AmazonSes"
    assert details["messageId"].startswith("0102")


def test_the_raw_message_carries_name_headers_body_and_attachment(
    servers: ProviderServers, context: ProviderContext
) -> None:
    build_amazon_ses(CONFIG, context).send_email(sample_email())

    mime = raw_message(servers.last("ses").json())
    assert mime["From"] == "Ana from Acme <ana@acme.example>"
    assert mime["To"] == "bruno@customer.example"
    assert mime["Cc"] == "carla@customer.example"
    assert mime["Bcc"] is None  # blind copies travel only in the envelope
    assert mime["Reply-To"] == "support@acme.example"
    assert mime["Subject"] == "Your invoice"
    assert mime["X-Campaign"] == "spring"
    assert mime["List-Unsubscribe"] == "<https://acme.example/u/1>"
    html = mime.get_body(preferencelist=("html",))
    assert html is not None and "Hello Bruno — here is your invoice." in html.get_content()
    [attachment] = list(mime.iter_attachments())
    assert attachment.get_filename() == "invoice.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == ATTACHMENT.data


def test_a_non_ascii_display_name_is_encoded_in_the_from_header(
    servers: ProviderServers, context: ProviderContext
) -> None:
    build_amazon_ses(CONFIG, context).send_email(sample_email(name="Zoë da Acme, Lda."))

    mime = raw_message(servers.last("ses").json())
    assert mime["From"].addresses[0].display_name == "Zoë da Acme, Lda."
    assert mime["From"].addresses[0].addr_spec == "ana@acme.example"


def test_tags_are_reduced_to_the_characters_ses_allows(
    servers: ProviderServers, context: ProviderContext
) -> None:
    build_amazon_ses(CONFIG, context).send_email(
        sample_email(tags={"nodeId": "welcome email #1", "userId": "a+b@x.io"})
    )

    tags = {tag["Name"]: tag["Value"] for tag in servers.last("ses").json()["EmailTags"]}
    assert tags == {"nodeId": "welcome_email__1", "userId": "a_b@x.io"}
    assert ses_tag_text("x" * 300) == "x" * 256


def test_a_refused_message_is_rejected_with_the_ses_message(
    servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("ses", 400)

    with pytest.raises(ProviderRejected) as refused:
        build_amazon_ses(CONFIG, context).send_email(sample_email())

    assert refused.value.details == {"type": "AmazonSes", "message": "Email address is not verified."}


def test_a_wrong_secret_key_is_rejected_without_showing_it(context: ProviderContext) -> None:
    wrong_secret = "not-the-secret-access-key-9876"
    config = {**CONFIG, "secretAccessKey": wrong_secret}

    with pytest.raises(ProviderRejected) as refused:
        build_amazon_ses(config, context).send_email(sample_email())

    assert "signature" in refused.value.details["message"]
    assert wrong_secret not in str(refused.value) + str(refused.value.details)


@pytest.mark.parametrize("status", [429, 500])
def test_throttling_and_server_errors_are_transient(
    status: int, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("ses", status)

    with pytest.raises(ProviderUnavailable):
        build_amazon_ses(CONFIG, context).send_email(sample_email())

    assert len(servers.sent("ses")) == 1  # boto3 does not retry on its own; the pipeline decides


def test_the_configured_endpoint_is_used_without_a_context_override(
    servers: ProviderServers, context: ProviderContext
) -> None:
    context.endpoints = {}

    build_amazon_ses({**CONFIG, "endpoint": servers.url}, context).send_email(sample_email())

    assert len(servers.sent("ses")) == 1


def test_one_client_per_credential_is_reused_across_senders(
    servers: ProviderServers, context: ProviderContext
) -> None:
    for _ in range(3):
        build_amazon_ses(CONFIG, context).send_email(sample_email())

    idle = context.connections.drain()
    assert len(idle) == 1
    for client in idle:
        client.close()


@pytest.mark.parametrize("missing", ["accessKeyId", "secretAccessKey", "region"])
def test_a_configuration_without_a_required_field_is_misconfigured(
    missing: str, context: ProviderContext
) -> None:
    config = {name: value for name, value in CONFIG.items() if name != missing}

    with pytest.raises(ProviderMisconfigured, match=missing):
        build_amazon_ses(config, context)


def test_an_endpoint_that_is_not_http_is_misconfigured(context: ProviderContext) -> None:
    with pytest.raises(ProviderMisconfigured, match="endpoint"):
        build_amazon_ses({**CONFIG, "endpoint": "file:///etc/passwd"}, context)


def test_an_unusable_region_is_misconfigured(context: ProviderContext) -> None:
    with pytest.raises(ProviderMisconfigured, match="region"):
        build_amazon_ses({**CONFIG, "region": "eu west 1/../x"}, context).send_email(sample_email())
