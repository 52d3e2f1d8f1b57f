"""Firebase Cloud Messaging: the service-account token exchange, the HTTP v1 send, and the outcomes.

The stand-in plays both Google's token endpoint (verifying the RS256 assertion with the service
account's public key) and FCM (accepting only the tokens it issued)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
    PushMessage,
)
from engine.messaging.providers.firebase import build_firebase
from engine.messaging.providers.registry import PUSH_PROVIDERS
from tests.support.provider_servers import FCM_CLIENT_EMAIL, FCM_PROJECT_ID, ProviderServers

MESSAGE = PushMessage(
    device_token="fcm-device-token-abc123",
    title="Your order shipped",
    body="It arrives on Friday",
    image_url="https://acme.example/box.png",
    android={"notification": {"channelId": "orders"}},
    tags={"workspaceId": "w1", "messageId": "m1", "userId": "u1"},
)


@pytest.fixture
def key_file(servers: ProviderServers) -> str:
    return json.dumps(servers.service_account)


@pytest.fixture
def config(key_file: str) -> dict[str, str]:
    return {"serviceAccountKey": key_file}


def test_the_registry_builds_firebase_senders(config: dict[str, str], context: ProviderContext) -> None:
    build = PUSH_PROVIDERS["Firebase"].build
    assert build is not None
    assert build(config, context).send_push(MESSAGE)["type"] == "Firebase"


def test_a_send_exchanges_a_signed_assertion_then_posts_the_v1_message(
    servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    details = build_firebase(config, context).send_push(MESSAGE)

    token_request = servers.last("google-token")
    assert token_request.form()["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    request = servers.last("fcm")
    assert (request.method, request.path) == ("POST", f"/v1/projects/{FCM_PROJECT_ID}/messages:send")
    assert request.headers["authorization"].startswith("Bearer ya29.")
    assert request.json() == {
        "message": {
            "token": "fcm-device-token-abc123",
            "notification": {
                "title": "Your order shipped",
                "body": "It arrives on Friday",
                "image": "https://acme.example/box.png",
            },
            "android": {"notification": {"channelId": "orders"}},
            "data": {"workspaceId": "w1", "messageId": "m1", "userId": "u1"},
        }
    }
    assert details["type"] == "Firebase"
    assert details["messageId"].startswith(f"projects/{FCM_PROJECT_ID}/messages/")


def test_a_message_without_notification_fields_sends_only_the_token(
    servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    build_firebase(config, context).send_push(PushMessage(device_token="t-1"))

    assert servers.last("fcm").json() == {"message": {"token": "t-1"}}


def test_the_access_token_is_fetched_once_and_reused(
    servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    for _ in range(3):
        build_firebase(config, context).send_push(MESSAGE)

    assert len(servers.sent("google-token")) == 1
    assert len({r.headers["authorization"] for r in servers.sent("fcm")}) == 1


def test_a_revoked_token_is_replaced_and_the_send_tried_once_more(
    servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    sender = build_firebase(config, context)
    sender.send_push(MESSAGE)
    servers.revoke_tokens()

    details = sender.send_push(MESSAGE)

    assert details["type"] == "Firebase"
    assert len(servers.sent("google-token")) == 2
    first, refused, retried = (r.headers["authorization"] for r in servers.sent("fcm"))
    assert first == refused != retried


def test_the_separate_fields_configure_the_same_account(
    servers: ProviderServers, context: ProviderContext
) -> None:
    account = servers.service_account
    config = {
        "projectId": account["project_id"],
        "clientEmail": account["client_email"],
        # as pasted from an environment variable: newlines written as "\n"
        "privateKey": account["private_key"].replace("\n", "\\n"),
    }

    assert build_firebase(config, context).send_push(MESSAGE)["type"] == "Firebase"


@pytest.mark.parametrize(("status", "name"), [(404, "UNREGISTERED"), (400, "INVALID_ARGUMENT")])
def test_a_refused_device_token_is_rejected(
    status: int, name: str, servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    servers.answer_next("fcm", status)

    with pytest.raises(ProviderRejected) as refused:
        build_firebase(config, context).send_push(MESSAGE)

    assert refused.value.details["type"] == "Firebase"
    assert refused.value.details["name"] == name


@pytest.mark.parametrize("status", [429, 500, 503])
def test_quota_and_server_errors_are_transient(
    status: int, servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    servers.answer_next("fcm", status)

    with pytest.raises(ProviderUnavailable):
        build_firebase(config, context).send_push(MESSAGE)


def test_an_unavailable_token_endpoint_is_transient(
    servers: ProviderServers, config: dict[str, str], context: ProviderContext
) -> None:
    servers.answer_next("google-token", 503)

    with pytest.raises(ProviderUnavailable):
        build_firebase(config, context).send_push(MESSAGE)


def test_a_key_google_does_not_know_is_misconfigured_without_showing_it(
    servers: ProviderServers, context: ProviderContext
) -> None:
    other_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    config = {"projectId": FCM_PROJECT_ID, "clientEmail": FCM_CLIENT_EMAIL, "privateKey": other_key}

    with pytest.raises(ProviderMisconfigured, match="invalid_grant") as refused:
        build_firebase(config, context).send_push(MESSAGE)

    assert other_key.splitlines()[1] not in str(refused.value)
    assert servers.sent("fcm") == []


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"projectId": FCM_PROJECT_ID, "clientEmail": FCM_CLIENT_EMAIL}, "privateKey"),
        ({"serviceAccountKey": "{not json"}, "serviceAccountKey"),
        ({"serviceAccountKey": json.dumps({"project_id": "p", "client_email": "e"})}, "private_key"),
        ({"projectId": "a/b", "clientEmail": FCM_CLIENT_EMAIL, "privateKey": "x"}, "projectId"),
    ],
)
def test_an_incomplete_configuration_is_misconfigured(
    config: dict[str, Any], named: str, context: ProviderContext
) -> None:
    with pytest.raises(ProviderMisconfigured, match=named):
        build_firebase(config, context)


def test_an_unreadable_private_key_is_misconfigured(context: ProviderContext) -> None:
    config = {
        "projectId": FCM_PROJECT_ID,
        "clientEmail": FCM_CLIENT_EMAIL,
        "privateKey": "-----BEGIN nonsense",
    }

    with pytest.raises(ProviderMisconfigured, match="privateKey") as refused:
        build_firebase(config, context).send_push(MESSAGE)

    assert "nonsense" not in str(refused.value)
