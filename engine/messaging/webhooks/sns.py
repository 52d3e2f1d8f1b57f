"""Amazon SNS HTTP(S) deliveries: the message signature and subscription confirmation.

Verification follows AWS's "Verifying the signatures of Amazon SNS messages": the canonical string is
`Name\\nValue\\n` for the type's fields in byte order of their names (Notification: Message, MessageId,
Subject if present, Timestamp, TopicArn, Type; (Un)SubscriptionConfirmation: Message, MessageId,
SubscribeURL, Timestamp, Token, TopicArn, Type), signed with RSA PKCS#1 v1.5 over SHA1
(SignatureVersion 1) or SHA256 (SignatureVersion 2) by the certificate at SigningCertURL.

Both URLs in a message are the sender's to choose, so they are fetched only when they match an allowed
pattern (by default AWS's own hosts, `https://sns.<region>.amazonaws.com/`): anything else would let a
caller make the server request arbitrary addresses. Redirects are not followed. Certificates are
cached by URL (AWS rotates them rarely, and every message names one).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.errors import NotAuthenticated

DEFAULT_CERT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com/[^?#\s\\]+\.pem$"
DEFAULT_SUBSCRIBE_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com/\?[^#\s\\]*$"
MAX_CERTIFICATE_BYTES = 64 * 1024

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
CONFIRMATION_TYPES = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})


class InvalidSnsSignature(NotAuthenticated):
    """The message is not signed by the certificate it names, or names one it may not."""

    def __init__(self) -> None:
        super().__init__("Invalid signature")


class SubscriptionNotConfirmed(NotAuthenticated):
    """Visiting the SubscribeURL failed (or it is not an allowed URL); upstream answers 401 `{}`."""

    def __init__(self) -> None:
        super().__init__("Subscription not confirmed", body={})


def canonical_string(message: Mapping[str, Any]) -> bytes | None:
    """The bytes SNS signed for `message`; None for an unknown Type or a missing or non-text field."""
    kind = message.get("Type")
    names: tuple[str, ...]
    if kind == "Notification":
        names = NOTIFICATION_FIELDS
    elif kind in CONFIRMATION_TYPES:
        names = CONFIRMATION_FIELDS
    else:
        return None
    parts: list[str] = []
    for name in names:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            return None
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


class SnsVerifier:
    """Verifies SNS messages and confirms subscriptions; safe to share between threads.

    `cert_url_pattern` and `subscribe_url_pattern` are regular expressions the whole URL must match
    (tests point them at a local server).
    """

    def __init__(
        self,
        *,
        cert_url_pattern: str = DEFAULT_CERT_URL_PATTERN,
        subscribe_url_pattern: str = DEFAULT_SUBSCRIBE_URL_PATTERN,
        timeout_seconds: float = 5.0,
        cached_certificates: int = 32,
    ) -> None:
        self._cert_url = re.compile(cert_url_pattern)
        self._subscribe_url = re.compile(subscribe_url_pattern)
        self._timeout = timeout_seconds
        self._capacity = cached_certificates
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, message: Mapping[str, Any]) -> None:
        """:raises InvalidSnsSignature: unless `message` is signed by the allowed certificate it names."""
        signed = canonical_string(message)
        version = message.get("SignatureVersion")
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()  # noqa: S303 - AWS's SignatureVersion 1 is SHA1withRSA
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise InvalidSnsSignature()
        url, signature = message.get("SigningCertURL"), message.get("Signature")
        if signed is None or not isinstance(url, str) or not isinstance(signature, str):
            raise InvalidSnsSignature()
        if not self._cert_url.fullmatch(url):
            raise InvalidSnsSignature()
        try:
            raw_signature = base64.b64decode(signature, validate=True)
            self._certificate_key(url).verify(raw_signature, signed, padding.PKCS1v15(), algorithm)
        except (binascii.Error, InvalidSignature):
            raise InvalidSnsSignature() from None

    def confirm_subscription(self, message: Mapping[str, Any]) -> None:
        """Visit the (verified) message's SubscribeURL.

        :raises SubscriptionNotConfirmed: the URL is not allowed, unreachable or answers non-2xx.
        """
        url = message.get("SubscribeURL")
        if not isinstance(url, str) or not self._subscribe_url.fullmatch(url):
            raise SubscriptionNotConfirmed()
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                response = client.get(url)
        except httpx.HTTPError:
            raise SubscriptionNotConfirmed() from None
        if not response.is_success:
            raise SubscriptionNotConfirmed()

    def _certificate_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._keys.get(url)
            if cached is not None:
                self._keys.move_to_end(url)
                return cached
        key = self._fetch_key(url)
        with self._lock:
            self._keys[url] = key
            while len(self._keys) > self._capacity:
                self._keys.popitem(last=False)
        return key

    def _fetch_key(self, url: str) -> rsa.RSAPublicKey:
        try:
            with (
                httpx.Client(timeout=self._timeout, follow_redirects=False) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise InvalidSnsSignature()
                pem = b""
                for chunk in response.iter_bytes():
                    pem += chunk
                    if len(pem) > MAX_CERTIFICATE_BYTES:
                        raise InvalidSnsSignature()
        except httpx.HTTPError:
            raise InvalidSnsSignature() from None
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            raise InvalidSnsSignature() from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSnsSignature()
        return key
