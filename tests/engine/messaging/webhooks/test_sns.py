"""SNS message signatures are checked as AWS documents them, against a certificate fetched only from an
allowed URL (served here by a local stand-in with a self-signed certificate), and subscriptions are
confirmed by visiting a SubscribeURL only when it is allowed too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from engine.messaging.webhooks.sns import (
    DEFAULT_CERT_URL_PATTERN,
    DEFAULT_SUBSCRIBE_URL_PATTERN,
    InvalidSnsSignature,
    SnsVerifier,
    SubscriptionNotConfirmed,
)
from tests.support.sns_certificates import CERT_PATH, SnsStandIn

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"


@pytest.fixture(scope="module")
def sns() -> Iterator[SnsStandIn]:
    stand_in = SnsStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def verifier(sns: SnsStandIn) -> SnsVerifier:
    return SnsVerifier(cert_url_pattern=sns.cert_url_pattern, subscribe_url_pattern=sns.subscribe_url_pattern)


def _notification(**overrides: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "My First Message",
        "Message": json.dumps({"eventType": "Delivery", "mail": {"messageId": "m-1"}}),
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        **overrides,
    }


def _confirmation(sns: SnsStandIn, subscribe_url: str | None = None) -> dict[str, Any]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e2",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": subscribe_url
        or f"{sns.base_url}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f",
        "Timestamp": "2012-04-26T20:45:04.751Z",
    }


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_message_signed_by_the_certificate_verifies(
    sns: SnsStandIn, verifier: SnsVerifier, version: str
) -> None:
    verifier.verify(sns.sign(_notification(), version=version))
    # Subject is optional, and signed only when present.
    without_subject = {name: value for name, value in _notification().items() if name != "Subject"}
    verifier.verify(sns.sign(without_subject, version=version))


@pytest.mark.parametrize("field", ["Message", "MessageId", "Subject", "Timestamp", "TopicArn"])
def test_changing_any_signed_field_breaks_the_signature(
    sns: SnsStandIn, verifier: SnsVerifier, field: str
) -> None:
    signed = sns.sign(_notification())
    with pytest.raises(InvalidSnsSignature):
        verifier.verify({**signed, field: signed[field] + "x"})


def test_the_signature_version_must_match_the_hash_used(sns: SnsStandIn, verifier: SnsVerifier) -> None:
    signed = sns.sign(_notification(), version="2")
    with pytest.raises(InvalidSnsSignature):
        verifier.verify({**signed, "SignatureVersion": "1"})
    with pytest.raises(InvalidSnsSignature):
        verifier.verify({**signed, "SignatureVersion": "3"})


def test_a_confirmation_signs_its_subscribe_url_and_token(sns: SnsStandIn, verifier: SnsVerifier) -> None:
    signed = sns.sign(_confirmation(sns))
    verifier.verify(signed)
    for field in ("SubscribeURL", "Token"):
        with pytest.raises(InvalidSnsSignature):
            verifier.verify({**signed, field: signed[field] + "0"})


def test_a_certificate_from_a_url_outside_the_pattern_is_never_fetched(sns: SnsStandIn) -> None:
    strict = SnsVerifier()  # production patterns: AWS's hosts only
    before = len(sns.requests)
    with pytest.raises(InvalidSnsSignature):
        strict.verify(sns.sign(_notification()))
    assert len(sns.requests) == before


def test_certificates_are_cached_by_url(sns: SnsStandIn) -> None:
    verifier = SnsVerifier(cert_url_pattern=sns.cert_url_pattern)
    before = sns.requests.count(CERT_PATH)
    for _ in range(3):
        verifier.verify(sns.sign(_notification()))
    assert sns.requests.count(CERT_PATH) == before + 1


def test_a_certificate_url_that_does_not_serve_a_certificate_fails(
    sns: SnsStandIn, verifier: SnsVerifier
) -> None:
    with pytest.raises(InvalidSnsSignature):
        verifier.verify(sns.sign(_notification(), cert_url=f"{sns.base_url}/missing.pem"))


def test_a_subscription_is_confirmed_by_visiting_its_subscribe_url(
    sns: SnsStandIn, verifier: SnsVerifier
) -> None:
    message = _confirmation(sns)
    verifier.confirm_subscription(message)
    assert message["SubscribeURL"].removeprefix(sns.base_url) in sns.requests


def test_a_subscribe_url_outside_the_pattern_is_never_visited(sns: SnsStandIn, verifier: SnsVerifier) -> None:
    before = len(sns.requests)
    with pytest.raises(SubscriptionNotConfirmed):
        verifier.confirm_subscription(_confirmation(sns, subscribe_url="http://127.0.0.2:9/?Action=x"))
    assert len(sns.requests) == before


def test_a_subscribe_url_that_fails_is_not_confirmed(sns: SnsStandIn, verifier: SnsVerifier) -> None:
    # Allowed by the pattern, but the stand-in answers 404.
    with pytest.raises(SubscriptionNotConfirmed):
        verifier.confirm_subscription(_confirmation(sns, subscribe_url=f"{sns.base_url}/?Action=Other"))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (
            "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            True,
        ),
        ("http://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem", False),
        ("https://sns.us-west-2.amazonaws.com.evil.example/x.pem", False),
        ("https://sns.us-west-2.amazonaws.com@evil.example/x.pem", False),
        ("https://evil.example/sns.us-west-2.amazonaws.com/x.pem", False),
        ("https://sns.us-west-2.amazonaws.com/x.pem?.pem", False),
        ("https://sns.us-west-2.amazonaws.com/x.txt", False),
    ],
)
def test_in_production_only_aws_hosts_serve_certificates(url: str, allowed: bool) -> None:
    assert bool(re.fullmatch(DEFAULT_CERT_URL_PATTERN, url)) is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=a&Token=b", True),
        ("https://sns.us-west-2.amazonaws.com.evil.example/?Action=ConfirmSubscription", False),
        ("https://169.254.169.254/?Action=ConfirmSubscription", False),
        ("http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription", False),
    ],
)
def test_in_production_only_aws_hosts_confirm_subscriptions(url: str, allowed: bool) -> None:
    assert bool(re.fullmatch(DEFAULT_SUBSCRIBE_URL_PATTERN, url)) is allowed
