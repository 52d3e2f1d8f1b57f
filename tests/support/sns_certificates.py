"""A stand-in for Amazon SNS in tests: an RSA key with a self-signed certificate, served by a local
`http.server` thread (which also answers SubscribeURL visits and records every request), and messages
signed exactly as SNS signs them (canonical `Name\\nValue\\n` string, RSA PKCS#1 v1.5 over SHA1 for
SignatureVersion 1 or SHA256 for 2). The canonical string is built here independently of the code
under test.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_PATH = "/SimpleNotificationService-test.pem"

_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}


def self_signed_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class SnsStandIn:
    """The certificate server and signer; `requests` lists the paths (with query) it was asked for."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = self_signed_certificate(self.key)
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                if self.path == CERT_PATH:
                    self._answer(200, stand_in.certificate)
                elif self.path.startswith("/?Action=ConfirmSubscription"):
                    self._answer(200, b"<ConfirmSubscriptionResponse/>")
                else:
                    self._answer(404, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def cert_url(self) -> str:
        return self.base_url + CERT_PATH

    @property
    def cert_url_pattern(self) -> str:
        return rf"^http://127\.0\.0\.1:{self._server.server_address[1]}/[^?#]+\.pem$"

    @property
    def subscribe_url_pattern(self) -> str:
        return rf"^http://127\.0\.0\.1:{self._server.server_address[1]}/\?.*$"

    def start(self) -> SnsStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def sign(
        self, message: dict[str, Any], *, version: str = "1", cert_url: str | None = None
    ) -> dict[str, Any]:
        """`message` with SignatureVersion, SigningCertURL and Signature set as SNS sets them."""
        canonical = "".join(
            f"{name}\n{message[name]}\n" for name in _SIGNED_FIELDS[message["Type"]] if name in message
        ).encode()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1 is SHA1
        signature = self.key.sign(canonical, padding.PKCS1v15(), algorithm)
        return {
            **message,
            "SignatureVersion": version,
            "SigningCertURL": cert_url or self.cert_url,
            "Signature": base64.b64encode(signature).decode(),
        }
