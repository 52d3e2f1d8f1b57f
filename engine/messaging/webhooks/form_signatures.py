"""The signature Mandrill and Twilio put on a form-encoded POST: base64 HMAC-SHA1, keyed with the
webhook key (Mandrill) or auth token (Twilio), over the URL the provider called — exactly as it was
configured, query string included — followed by every POST parameter sorted by name, as name + value
with no separators (a repeated name contributes each of its values, sorted).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl

from engine.errors import InvalidInput


def parse_form(raw_body: bytes) -> list[tuple[str, str]]:
    """The body's `application/x-www-form-urlencoded` parameters, decoded, in order.

    :raises InvalidInput: the body is not UTF-8 form data.
    """
    try:
        return parse_qsl(raw_body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw_body))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("body is not form-encoded", field="body") from None


def form_signature(key: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """The base64 HMAC-SHA1 signature of `url` and `params` under `key`."""
    signed = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def form_signature_matches(key: str, url: str, params: Sequence[tuple[str, str]], signature: str) -> bool:
    """Whether `signature` is the form signature of the request (compared in constant time)."""
    return hmac.compare_digest(form_signature(key, url, params).encode(), signature.encode())
