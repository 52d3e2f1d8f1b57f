"""Twilio: the form-encoded Messages request, its credentials, and the outcomes of its answers."""

from __future__ import annotations

import base64

import pytest

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
    SmsMessage,
)
from engine.messaging.providers.twilio import build_twilio
from tests.support.provider_servers import (
    TWILIO_ACCOUNT_SID,
    TWILIO_API_KEY_SECRET,
    TWILIO_API_KEY_SID,
    TWILIO_AUTH_TOKEN,
    TWILIO_MESSAGING_SERVICE_SID,
    ProviderServers,
)

CONFIG = {
    "accountSid": TWILIO_ACCOUNT_SID,
    "authToken": TWILIO_AUTH_TOKEN,
    "messagingServiceSid": TWILIO_MESSAGING_SERVICE_SID,
}
CALLBACK = "https://feedgate.example/api/public/webhooks/twilio?workspaceId=w1&userId=u1&messageId=m1"
MESSAGE = SmsMessage(to="+351912345678", body="Your code is 4242", status_callback_url=CALLBACK)


def basic_credentials(authorization: str) -> str:
    scheme, _, encoded = authorization.partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode()


def test_a_send_posts_the_form_encoded_messages_request(
    servers: ProviderServers, context: ProviderContext
) -> None:
    details = build_twilio(CONFIG, context).send_sms(MESSAGE)

    request = servers.last("twilio")
    assert (request.method, request.path) == (
        "POST",
        f"/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json",
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert basic_credentials(request.headers["authorization"]) == f"{TWILIO_ACCOUNT_SID}:{TWILIO_AUTH_TOKEN}"
    assert request.form() == {
        "To": "+351912345678",
        "Body": "Your code is 4242",
        "MessagingServiceSid": TWILIO_MESSAGING_SERVICE_SID,
        "StatusCallback": CALLBACK,
    }
    assert details["type"] == "Twilio"
    assert details["sid"].startswith("SM") and len(details["sid"]) == 34


def test_an_api_key_pair_is_preferred_to_the_auth_token(
    servers: ProviderServers, context: ProviderContext
) -> None:
    config = {**CONFIG, "apiKeySid": TWILIO_API_KEY_SID, "apiKeySecret": TWILIO_API_KEY_SECRET}
    build_twilio(config, context).send_sms(MESSAGE)

    request = servers.last("twilio")
    assert (
        basic_credentials(request.headers["authorization"]) == f"{TWILIO_API_KEY_SID}:{TWILIO_API_KEY_SECRET}"
    )
    assert TWILIO_ACCOUNT_SID in request.path  # the account still names the resource


def test_a_test_send_has_no_status_callback(servers: ProviderServers, context: ProviderContext) -> None:
    build_twilio(CONFIG, context).send_sms(SmsMessage(to="+351912345678", body="test"))

    assert "StatusCallback" not in servers.last("twilio").form()


def test_an_invalid_number_is_rejected_with_twilio_message(context: ProviderContext) -> None:
    with pytest.raises(ProviderRejected) as refused:
        build_twilio(CONFIG, context).send_sms(SmsMessage(to="12345", body="hello"))

    assert refused.value.details == {"type": "Twilio", "message": "Invalid 'To' Phone Number: 12345"}


def test_a_wrong_auth_token_is_rejected_without_showing_it(context: ProviderContext) -> None:
    wrong_token = "not-the-auth-token-2468"
    with pytest.raises(ProviderRejected) as refused:
        build_twilio({**CONFIG, "authToken": wrong_token}, context).send_sms(MESSAGE)

    assert refused.value.details == {"type": "Twilio", "message": "Authenticate"}
    assert wrong_token not in str(refused.value)


@pytest.mark.parametrize("status", [429, 500])
def test_throttling_and_server_errors_are_transient(
    status: int, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("twilio", status)

    with pytest.raises(ProviderUnavailable):
        build_twilio(CONFIG, context).send_sms(MESSAGE)


@pytest.mark.parametrize("missing", ["accountSid", "messagingServiceSid"])
def test_a_configuration_without_a_required_field_is_misconfigured(
    missing: str, context: ProviderContext
) -> None:
    config = {name: value for name, value in CONFIG.items() if name != missing}

    with pytest.raises(ProviderMisconfigured, match=missing):
        build_twilio(config, context)


@pytest.mark.parametrize(
    "credentials", [{}, {"apiKeySid": TWILIO_API_KEY_SID}, {"apiKeySecret": TWILIO_API_KEY_SECRET}]
)
def test_a_configuration_without_a_complete_credential_is_misconfigured(
    credentials: dict[str, str], context: ProviderContext
) -> None:
    config = {
        "accountSid": TWILIO_ACCOUNT_SID,
        "messagingServiceSid": TWILIO_MESSAGING_SERVICE_SID,
        **credentials,
    }

    with pytest.raises(ProviderMisconfigured, match="authToken"):
        build_twilio(config, context)


def test_an_account_sid_that_is_not_an_identifier_is_misconfigured(context: ProviderContext) -> None:
    with pytest.raises(ProviderMisconfigured, match="accountSid"):
        build_twilio({**CONFIG, "accountSid": "../../other"}, context)
