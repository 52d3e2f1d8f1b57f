"""The hash-authenticated links a message carries (Dittofeed §5.3, §5.4): the subscription hash, the
unsubscribe and subscription-management page URLs, and the view-in-browser URL.

Callers that verify a hash recompute it with the same function and compare with
`hmac.compare_digest`; nothing here looks anything up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from engine.bootstrap import SUBSCRIPTION_SECRET_NAME

if TYPE_CHECKING:
    from engine.messaging.render import RenderContext

# The secret that keys view-in-browser hashes (a well-known Dittofeed secret name, §1.2). Whoever builds
# the RenderContext puts the key under this name; the view-in-browser endpoint verifies with the same key.
VIEW_IN_BROWSER_SECRET_NAME = "view-in-browser-key"  # noqa: S105 (a name, not a secret)
SUBSCRIPTION_PAGE_PATH = "/api/public/subscription-management/page"
VIEW_IN_BROWSER_PATH = "/api/public/view-in-browser"


# Byte-for-byte JSON.stringify of a flat string object: insertion order, no whitespace, non-ASCII left
# as is (UTF-8), so hashes made by Dittofeed verify here and vice versa. One encoder for every message.
_STRINGIFY = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# What quote_plus leaves as is.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _hmac_hex(key: str, value: Mapping[str, str]) -> str:
    payload = _STRINGIFY.encode(value)
    return hmac.digest(key.encode(), payload.encode(), hashlib.sha256).hex()


def subscription_hash(
    *, workspace_id: str, user_id: str, identifier: str, identifier_key: str, secret: str
) -> str:
    """Return hex HMAC-SHA256(secret, '{"u":user_id,"w":workspace_id,"i":identifier,"k":identifier_key}')."""
    return _hmac_hex(secret, {"u": user_id, "w": workspace_id, "i": identifier, "k": identifier_key})


def view_in_browser_hash(*, workspace_id: str, message_id: str, secret: str) -> str:
    """Return hex HMAC-SHA256(secret, '{"w":workspace_id,"m":message_id}')."""
    return _hmac_hex(secret, {"w": workspace_id, "m": message_id})


def as_identifier(value: Any) -> str | None:
    """Return a user-property value as the string a link carries, or None if it cannot identify anyone.

    Numbers (phone numbers stored as JSON numbers) are stringified as JavaScript would; empty strings,
    booleans, null and objects identify no one.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str) and value:
        return value
    return None


def _subscription_params(context: RenderContext) -> dict[str, str] | None:
    secret = context.secrets.get(SUBSCRIPTION_SECRET_NAME)
    identifier_key = context.identifier_key
    if not secret or not identifier_key:
        return None
    identifier = as_identifier(context.user.get(identifier_key))
    user_id = as_identifier(context.user.get("id"))
    if identifier is None or user_id is None:
        return None
    digest = subscription_hash(
        workspace_id=context.workspace_id,
        user_id=user_id,
        identifier=identifier,
        identifier_key=identifier_key,
        secret=secret,
    )
    return {"w": context.workspace_id, "i": identifier, "ik": identifier_key, "h": digest}


def _url(base_url: str, path: str, params: Mapping[str, str]) -> str:
    # As urlencode writes it, without calling quote_plus on values it would leave as they are (ids,
    # hashes): every email's List-Unsubscribe header builds a link.
    query = "&".join(
        f"{name}={value if _UNRESERVED.fullmatch(value) else quote_plus(value)}"
        for name, value in params.items()
    )
    return f"{base_url.rstrip('/')}{path}?{query}"


def unsubscribe_url(context: RenderContext) -> str:
    """Return the one-click unsubscribe URL for the message's subscription group, or "" (§7.6).

    Format: <base>/api/public/subscription-management/page?w=&i=&ik=&h=[&s=<group>&sub=0][&isPreview=true]
    """
    params = _subscription_params(context)
    if params is None:
        return ""
    if context.subscription_group_id:
        params |= {"s": context.subscription_group_id, "sub": "0"}
    if context.is_preview:
        params["isPreview"] = "true"
    return _url(context.base_url, SUBSCRIPTION_PAGE_PATH, params)


def subscription_management_url(context: RenderContext) -> str:
    """Return the subscription-management page URL listing every channel, or "" (§5.3).

    Format: <base>/api/public/subscription-management/page?w=&i=&ik=&h=[&isPreview=true]&showAllChannels=true
    """
    params = _subscription_params(context)
    if params is None:
        return ""
    if context.is_preview:
        params["isPreview"] = "true"
    params["showAllChannels"] = "true"
    return _url(context.base_url, SUBSCRIPTION_PAGE_PATH, params)


def view_in_browser_url(context: RenderContext) -> str:
    """Return <base>/api/public/view-in-browser?w=&m=&h=, or "" without a message id or key (§5.4)."""
    secret = context.secrets.get(VIEW_IN_BROWSER_SECRET_NAME)
    if not secret or not context.message_id:
        return ""
    digest = view_in_browser_hash(
        workspace_id=context.workspace_id, message_id=context.message_id, secret=secret
    )
    return _url(
        context.base_url,
        VIEW_IN_BROWSER_PATH,
        {"w": context.workspace_id, "m": context.message_id, "h": digest},
    )
