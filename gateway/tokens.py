"""Every signed value feedgate hands out: embedded session tokens and the member session cookie.

One `TokenSigner` per app, built from SECRET_KEY and FEEDGATE_SECRET_KEY_FALLBACKS. Values are
itsdangerous URL-safe timed signatures with a salt per purpose, so a value signed for one purpose is
never accepted for another (a session cookie is not an embed token). Rotation: new values are signed
with SECRET_KEY; values signed with a fallback key still verify until they expire. The payloads are
signed, not encrypted: they hold ids and scopes, never a secret.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.errors import NotAuthenticated


class Purpose(enum.StrEnum):
    EMBEDDED_SESSION = "feedgate.embedded-session.v1"
    MEMBER_SESSION = "feedgate.member-session.v1"


class InvalidToken(NotAuthenticated):
    """A value that was not signed by this server for this purpose, or was altered."""


class ExpiredToken(NotAuthenticated):
    """A correctly signed value past its lifetime."""


class TokenSigner:
    """Signs and verifies purpose-salted values under the current key and its fallbacks."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()) -> None:
        if not secret_key:
            raise ValueError("a secret key is required")
        # itsdangerous signs with the last key of the list and verifies with any of them.
        self._keys = [*reversed(fallbacks), secret_key]

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keys, salt=purpose.value)

    def sign(self, purpose: Purpose, payload: dict[str, Any]) -> str:
        return self._serializer(purpose).dumps(payload)

    def load(self, purpose: Purpose, value: str, *, max_age: int) -> tuple[dict[str, Any], datetime]:
        """Return the payload and when it was signed.

        :raises ExpiredToken: signed more than `max_age` seconds ago.
        :raises InvalidToken: anything else that does not verify.
        """
        try:
            serializer = self._serializer(purpose)
            payload, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except SignatureExpired:
            raise ExpiredToken("Session token expired") from None
        except BadSignature:
            raise InvalidToken("Session token is invalid") from None
        if not isinstance(payload, dict):
            raise InvalidToken("Session token is invalid")
        return payload, signed_at.astimezone(UTC)
