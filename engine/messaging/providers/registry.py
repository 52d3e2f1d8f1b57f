"""Every provider type feedgate knows (Dittofeed §8.4): its channel, the well-known name of the secret
holding its configuration, which configuration fields it takes, which of them are secret (never
returned in full), and how to build a sender from a configuration.

A kind whose `build` is None is accepted as configuration (so a Dittofeed export loads) but cannot
send; a send through it is recorded as MessageServiceProviderMisconfigured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.messaging.providers.amazon_ses import build_amazon_ses
from engine.messaging.providers.base import ProviderContext
from engine.messaging.providers.firebase import build_firebase
from engine.messaging.providers.mailchimp import build_mailchimp
from engine.messaging.providers.postmark import build_postmark
from engine.messaging.providers.resend import build_resend
from engine.messaging.providers.sendgrid import build_sendgrid
from engine.messaging.providers.smtp import build_smtp
from engine.messaging.providers.test_provider import TEST, build_test_provider
from engine.messaging.providers.twilio import build_twilio

Build = Callable[[Mapping[str, Any], ProviderContext], Any]


@dataclass(frozen=True)
class ProviderKind:
    channel: str  # "Email" | "Sms" | "MobilePush"
    type: str
    secret_name: str
    fields: tuple[str, ...] = ()
    secret_fields: frozenset[str] = frozenset()
    build: Build | None = None


def _kinds(*kinds: ProviderKind) -> dict[str, ProviderKind]:
    return {kind.type: kind for kind in kinds}


EMAIL_PROVIDERS = _kinds(
    ProviderKind(
        "Email",
        "SendGrid",
        "sendgrid",
        ("apiKey", "webhookKey"),
        frozenset({"apiKey", "webhookKey"}),
        build=build_sendgrid,
    ),
    ProviderKind(
        "Email",
        "AmazonSes",
        "amazonses",
        ("accessKeyId", "secretAccessKey", "region", "endpoint", "snsTopicArn"),
        frozenset({"secretAccessKey"}),
        build=build_amazon_ses,
    ),
    ProviderKind(
        "Email",
        "Resend",
        "resend",
        ("apiKey", "webhookKey"),
        frozenset({"apiKey", "webhookKey"}),
        build=build_resend,
    ),
    ProviderKind(
        "Email",
        "PostMark",
        "postmark",
        ("apiKey", "webhookKey", "messageStream"),
        frozenset({"apiKey", "webhookKey"}),
        build=build_postmark,
    ),
    ProviderKind(
        "Email",
        "MailChimp",
        "mailchimp",
        ("apiKey", "webhookKey"),
        frozenset({"apiKey", "webhookKey"}),
        build=build_mailchimp,
    ),
    ProviderKind(
        "Email",
        "Smtp",
        "smtp",
        ("host", "port", "username", "password"),
        frozenset({"password"}),
        build=build_smtp,
    ),
    ProviderKind("Email", TEST, "EmailTestProvider", build=build_test_provider),
)
SMS_PROVIDERS = _kinds(
    ProviderKind(
        "Sms",
        "Twilio",
        "twilio-key",
        ("accountSid", "messagingServiceSid", "authToken", "apiKeySid", "apiKeySecret"),
        frozenset({"authToken", "apiKeySecret"}),
        build=build_twilio,
    ),
    ProviderKind(
        "Sms", "SignalWire", "signalwire", ("project", "token", "spaceUrl", "phone"), frozenset({"token"})
    ),
    ProviderKind("Sms", TEST, "SmsTestProvider", build=build_test_provider),
)
PUSH_PROVIDERS = _kinds(
    ProviderKind(
        "MobilePush",
        "Firebase",
        "firebase",
        # serviceAccountKey: the whole JSON key file, instead of the three separate fields.
        ("projectId", "clientEmail", "privateKey", "privateKeyId", "serviceAccountKey"),
        frozenset({"privateKey", "serviceAccountKey"}),
        build=build_firebase,
    ),
    ProviderKind("MobilePush", TEST, "MobilePushTestProvider", build=build_test_provider),
)
PROVIDERS_BY_CHANNEL: dict[str, dict[str, ProviderKind]] = {
    "Email": EMAIL_PROVIDERS,
    "Sms": SMS_PROVIDERS,
    "MobilePush": PUSH_PROVIDERS,
}


def masked_config(kind: ProviderKind, config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` as it may be shown: secret fields reduced to their last four characters."""
    shown: dict[str, Any] = {}
    for name, value in config.items():
        if name in kind.secret_fields and isinstance(value, str) and value:
            shown[name] = "••••" + value[-4:] if len(value) >= 12 else "••••"
        else:
            shown[name] = value
    return shown
