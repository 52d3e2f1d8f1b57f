"""Resend's webhooks, delivered and signed by Svix (Dittofeed §5.2, §8.3).

Svix signs `<svix-id>.<svix-timestamp>.<raw body>` with HMAC-SHA256 under the secret `whsec_<base64>`
(the `resend` secret's `webhookKey`); `svix-signature` is a space-separated list of `v1,<base64>`
entries (several while a secret is being rotated), and one matching entry is enough. A timestamp more
than five minutes from now, either way, is refused, so a captured request cannot be replayed later.

The send's tags are `data.tags` (an object; a name/value list is read too). A body without a workspace
tag is acknowledged and ignored; no secret is a 400, a bad signature or an ineligible workspace a 401.
The event time is the event's `created_at` (the top-level one; `data.created_at` is the email's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.events import EventRow
from engine.messaging.webhooks.status_events import (
    ProviderEvent,
    StatusEventName,
    parse_json_body,
    parse_time,
    pick_tags,
    status_event_rows,
)
from engine.messaging.webhooks.tenancy import RESEND_SECRET, authorize_workspaces, parse_workspace_id

SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
TOLERANCE = timedelta(minutes=5)

EVENT_NAMES = {
    "email.opened": StatusEventName.EMAIL_OPENED,
    "email.clicked": StatusEventName.EMAIL_CLICKED,
    "email.bounced": StatusEventName.EMAIL_BOUNCED,
    # Upstream records a delayed delivery as a drop; kept for compatibility.
    "email.delivery_delayed": StatusEventName.EMAIL_DROPPED,
    "email.complained": StatusEventName.EMAIL_MARKED_SPAM,
    "email.delivered": StatusEventName.EMAIL_DELIVERED,
}


def svix_secret(webhook_key: object) -> bytes | None:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional); None if unusable."""
    if not isinstance(webhook_key, str) or not webhook_key.strip():
        return None
    try:
        return base64.b64decode(webhook_key.strip().removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return None


def svix_signature(secret: bytes, svix_id: str, timestamp: str, raw_body: bytes) -> str:
    """The `v1` signature (base64, without the `v1,` prefix)."""
    signed = f"{svix_id}.{timestamp}.".encode() + raw_body
    return base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def svix_verifies(secret: bytes, headers: Mapping[str, str], raw_body: bytes, now: datetime) -> bool:
    """Whether the request is signed under `secret` with a timestamp within five minutes of `now`."""
    try:
        sent_at = datetime.fromtimestamp(int(headers["svix-timestamp"]), now.tzinfo)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - sent_at) > TOLERANCE:
        return False
    expected = svix_signature(secret, headers["svix-id"], headers["svix-timestamp"], raw_body).encode()
    for entry in headers["svix-signature"].split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode()):
            return True
    return False


def receive_resend(
    session: Session, raw_body: bytes, headers: Mapping[str, str | None], received_at: datetime
) -> list[EventRow]:
    """The status event rows of a signed Resend webhook; none when it names no workspace.

    :raises InvalidInput: missing Svix headers, a malformed body, or no secret.
    :raises NotAuthenticated: the signature does not verify, or the workspace cannot receive events.
    """
    present = {name: headers.get(name) for name in SVIX_HEADERS}
    for header, value in present.items():
        if not value:
            raise InvalidInput(f"headers must have required property '{header}'", field=header)
    svix = {header: value for header, value in present.items() if value}
    event = _parse_event(raw_body)
    data = event["data"]
    tags = pick_tags(_tag_object(data.get("tags")))
    workspace_id = parse_workspace_id(tags.get("workspaceId"))
    if workspace_id is None:
        return []

    def verify(config: Mapping[str, Any]) -> bool | None:
        secret = svix_secret(config.get("webhookKey"))
        return None if secret is None else svix_verifies(secret, svix, raw_body, received_at)

    authorize_workspaces(session, [workspace_id], RESEND_SECRET, verify)
    kind = event.get("type")
    name = EVENT_NAMES.get(kind) if isinstance(kind, str) else None
    email_id = data.get("email_id")
    if name is None or not isinstance(kind, str) or not isinstance(email_id, str):
        return []
    to = data.get("to")
    recipient = to[0] if isinstance(to, list) and to else to
    provider_event = ProviderEvent(
        name=name,
        provider_event_type=kind,
        provider_message_id=email_id,
        tags=tags,
        occurred_at=parse_time(event.get("created_at")) or parse_time(data.get("created_at")) or received_at,
        fields={"email": recipient} if isinstance(recipient, str) else {},
    )
    return status_event_rows(workspace_id, [provider_event], received_at)


def _parse_event(raw_body: bytes) -> dict[str, Any]:
    event = parse_json_body(raw_body)
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise InvalidInput("body must have required property 'data'", field="body/data")
    return event


def _tag_object(tags: object) -> dict[str, Any]:
    if isinstance(tags, dict):
        return tags
    if isinstance(tags, list):  # the sending API's shape: [{"name": ..., "value": ...}]
        return {
            t["name"]: t.get("value") for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
    return {}
