"""Firebase Cloud Messaging push through the HTTP v1 API (POST /v1/projects/{id}/messages:send).

FCM takes an OAuth 2 access token obtained with the service account's key through the JWT-bearer
grant (RFC 7523): an RS256 assertion signed with the account's private key is exchanged at Google's
token endpoint. Tokens live an hour and are shared through the context's token cache; one refused by
FCM (401) is dropped and the send tried once more with a fresh one.

Configuration: either `serviceAccountKey` (the service account's JSON key file as downloaded) or the
separate `projectId`, `clientEmail` and `privateKey` fields.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    ProviderUnavailable,
    PushMessage,
    require_fields,
)
from engine.messaging.providers.http_calls import call, json_object, raise_for_failure, text_or_none

FIREBASE = "Firebase"
# The key under which ProviderContext.endpoints may override Google's token endpoint.
FIREBASE_TOKEN = "FirebaseToken"  # noqa: S105 (a name, not a secret)
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key_pem: str
    private_key_id: str | None = None


class FirebaseSender:
    def __init__(self, account: ServiceAccount, context: ProviderContext) -> None:
        self._account = account
        self._context = context
        base = context.endpoint(FIREBASE, DEFAULT_BASE_URL)
        self._url = f"{base}/v1/projects/{account.project_id}/messages:send"
        self._token_url = context.endpoint(FIREBASE_TOKEN, DEFAULT_TOKEN_URL)
        key_digest = hashlib.sha256(account.private_key_pem.encode()).hexdigest()
        self._token_key = (FIREBASE, self._token_url, account.client_email, key_digest)

    def send_push(self, message: PushMessage) -> ProviderDetails:
        body = {"message": fcm_message(message)}
        for attempt in range(2):
            token = self._context.tokens.get(self._token_key, self._fetch_token)
            response = call(
                self._context,
                FIREBASE,
                "POST",
                self._url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code != 401 or attempt == 1:
                break
            self._context.tokens.discard(self._token_key, token)  # revoked or expired early
        answer = json_object(response)
        if not response.is_success:
            error = answer.get("error")
            error = error if isinstance(error, dict) else {}
            raise_for_failure(
                FIREBASE,
                response,
                {
                    "type": FIREBASE,
                    "name": fcm_error_code(error) or f"HTTP_{response.status_code}",
                    "message": text_or_none(error.get("message")) or f"HTTP {response.status_code}",
                },
            )
        details: ProviderDetails = {"type": FIREBASE}
        name = text_or_none(answer.get("name"))
        if name:
            details["messageId"] = name
        return details

    def _fetch_token(self) -> tuple[str, float]:
        response = call(
            self._context,
            FIREBASE,
            "POST",
            self._token_url,
            data={
                "grant_type": JWT_BEARER_GRANT,
                "assertion": signed_assertion(self._account, self._token_url),
            },
        )
        answer = json_object(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderUnavailable(f"{FIREBASE} token endpoint answered {response.status_code}")
        token = text_or_none(answer.get("access_token"))
        if not response.is_success or token is None:
            reason = text_or_none(answer.get("error")) or f"HTTP {response.status_code}"
            raise ProviderMisconfigured(
                f"{FIREBASE} service account was refused by the token endpoint ({reason})"
            )
        expires_in = answer.get("expires_in")
        return token, float(expires_in) if isinstance(expires_in, int | float) else 3600.0


def fcm_message(message: PushMessage) -> dict[str, Any]:
    fcm: dict[str, Any] = {"token": message.device_token}
    notification = {
        name: value
        for name, value in (("title", message.title), ("body", message.body), ("image", message.image_url))
        if value
    }
    if notification:
        fcm["notification"] = notification
    if message.android:
        fcm["android"] = dict(message.android)
    if message.tags:
        fcm["data"] = {name: str(value) for name, value in message.tags.items()}
    return fcm


def fcm_error_code(error: Mapping[str, Any]) -> str | None:
    """FCM's own error code (UNREGISTERED, SENDER_ID_MISMATCH…) from the error details, else the
    canonical status (INVALID_ARGUMENT…)."""
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            code = text_or_none(detail.get("errorCode"))
            if code:
                return code
    return text_or_none(error.get("status"))


def signed_assertion(account: ServiceAccount, audience: str, now: float | None = None) -> str:
    """The RS256-signed JWT the token endpoint exchanges for an access token."""
    issued_at = int(time.time() if now is None else now)
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {
        "iss": account.client_email,
        "scope": FCM_SCOPE,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ASSERTION_LIFETIME_SECONDS,
    }
    signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}".encode("ascii")
    signature = _private_key(account.private_key_pem).sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


def _private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ProviderMisconfigured(f"{FIREBASE} configuration has an unreadable privateKey") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ProviderMisconfigured(f"{FIREBASE} configuration privateKey is not an RSA key")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def service_account_from(config: Mapping[str, Any]) -> ServiceAccount:
    key_file = config.get("serviceAccountKey")
    if key_file:
        try:
            parsed = json.loads(key_file) if isinstance(key_file, str) else key_file
        except ValueError as exc:
            raise ProviderMisconfigured(f"{FIREBASE} configuration serviceAccountKey is not JSON") from exc
        if not isinstance(parsed, dict):
            raise ProviderMisconfigured(f"{FIREBASE} configuration serviceAccountKey is not a JSON object")
        project_id, client_email, private_key = require_fields(
            f"{FIREBASE} serviceAccountKey", parsed, "project_id", "client_email", "private_key"
        )
        key_id = text_or_none(parsed.get("private_key_id"))
    else:
        project_id, client_email, private_key = require_fields(
            FIREBASE, config, "projectId", "clientEmail", "privateKey"
        )
        key_id = text_or_none(config.get("privateKeyId"))
    if not all(c.isalnum() or c in "-_" for c in project_id):  # it becomes a path segment
        raise ProviderMisconfigured(f"{FIREBASE} configuration has an invalid projectId")
    # A key pasted from an environment variable often carries literal "\n" sequences.
    if "\\n" in private_key and "\n" not in private_key:
        private_key = private_key.replace("\\n", "\n")
    return ServiceAccount(project_id, client_email, private_key, key_id)


def build_firebase(config: Mapping[str, Any], context: ProviderContext) -> FirebaseSender:
    return FirebaseSender(service_account_from(config), context)
