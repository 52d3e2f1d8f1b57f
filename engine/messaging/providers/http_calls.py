"""What the HTTP-API providers share: one call through the context's client with transport failures
mapped to ProviderUnavailable, error answers mapped to the three outcomes, defensive JSON reading,
and the small formatting rules (sender mailboxes, base64 attachments, the message-metadata tags)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from engine.messaging.providers.base import (
    MESSAGE_METADATA_FIELDS,
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)

_ADDRESS_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def call(
    context: ProviderContext, provider_type: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request to a provider's API. A timeout or an unreachable host is transient.

    The message names only the failure's class: a transport error's text can carry the URL, and a
    webhook's URL may hold a secret.
    """
    try:
        return context.http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"{provider_type} did not answer in time") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"{provider_type} could not be reached ({type(exc).__name__})") from exc
    except UnicodeEncodeError as exc:  # a credential pasted with a character no header can carry
        raise ProviderMisconfigured(
            f"{provider_type} configuration holds a value that cannot be sent in an HTTP header"
        ) from exc


def is_transient(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def raise_for_failure(provider_type: str, response: httpx.Response, details: ProviderDetails) -> NoReturn:
    """A non-success answer: 429 and 5xx may pass on retry, anything else is the service's refusal."""
    if is_transient(response.status_code):
        raise ProviderUnavailable(f"{provider_type} answered {response.status_code}")
    raise ProviderRejected(f"{provider_type} refused the message ({response.status_code})", details)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when the body is not one (a proxy's HTML error page)."""
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def mailbox(address: str, name: str | None) -> str:
    """`Name <addr>` (Dittofeed §8.4 for SES, Resend, Postmark), the name quoted when it holds a
    character that would otherwise end or split it."""
    if not name:
        return address
    if _ADDRESS_SPECIALS.search(name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    return f"{name} <{address}>"


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def metadata_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Only the message-metadata tags, for providers that carry a limited set (Postmark)."""
    return {name: tags[name] for name in MESSAGE_METADATA_FIELDS if tags.get(name)}


def http_base_url(provider_type: str, field: str, value: str) -> str:
    """A configured base URL, accepted only as http(s) with a host."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = httpx.URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ProviderMisconfigured(
            f"{provider_type} configuration has an invalid {field}: not an http(s) URL"
        )
    return value.rstrip("/")
