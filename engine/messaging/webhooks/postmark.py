"""Postmark's webhooks (Dittofeed §5.2, §8.3).

Postmark does not sign its webhooks; Dittofeed has it send a custom header `x-postmark-secret` whose
value must equal the `postmark` secret's `webhookKey` (compared in constant time). One event per
request, its tags in `Metadata`. No workspace tag or no secret is a 400; a wrong secret or an
ineligible workspace a 401. Event times: `ReceivedAt` (Open, Click), `BouncedAt` (Bounce,
SpamComplaint), `DeliveredAt` (Delivery).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
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
from engine.messaging.webhooks.tenancy import POSTMARK_SECRET, authorize_workspaces, parse_workspace_id

SECRET_HEADER = "x-postmark-secret"  # noqa: S105 - a header name

# RecordType → (DF event, the field holding the event time).
RECORD_TYPES: dict[str, tuple[StatusEventName, str]] = {
    "Open": (StatusEventName.EMAIL_OPENED, "ReceivedAt"),
    "Click": (StatusEventName.EMAIL_CLICKED, "ReceivedAt"),
    "Bounce": (StatusEventName.EMAIL_BOUNCED, "BouncedAt"),
    "SpamComplaint": (StatusEventName.EMAIL_MARKED_SPAM, "BouncedAt"),
    "Delivery": (StatusEventName.EMAIL_DELIVERED, "DeliveredAt"),
}


def receive_postmark(
    session: Session, raw_body: bytes, secret_header: str | None, received_at: datetime
) -> list[EventRow]:
    """The status event rows of an authenticated Postmark webhook.

    :raises InvalidInput: no secret header, a malformed body, no workspace tag, or no secret.
    :raises NotAuthenticated: the header does not match, or the workspace cannot receive events.
    """
    if secret_header is None:
        raise InvalidInput(f"headers must have required property '{SECRET_HEADER}'", field=SECRET_HEADER)
    event = _parse_event(raw_body)
    metadata = event.get("Metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    tags = pick_tags(metadata)
    workspace_id = parse_workspace_id(tags.get("workspaceId"))
    if workspace_id is None:
        raise InvalidInput("Missing workspaceId in Metadata.", field="body/Metadata/workspaceId")

    def verify(config: Mapping[str, Any]) -> bool | None:
        key = config.get("webhookKey")
        if not isinstance(key, str) or not key:
            return None
        return hmac.compare_digest(key.encode(), secret_header.encode())

    authorize_workspaces(session, [workspace_id], POSTMARK_SECRET, verify)
    kind = event.get("RecordType")
    mapped = RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    message_id = event.get("MessageID")
    if mapped is None or not isinstance(kind, str) or not isinstance(message_id, str):
        return []
    name, time_field = mapped
    email = event.get("Recipient") or event.get("Email") or metadata.get("recipient")
    provider_event = ProviderEvent(
        name=name,
        provider_event_type=kind,
        provider_message_id=message_id,
        tags=tags,
        occurred_at=parse_time(event.get(time_field)) or received_at,
        fields={"email": email} if isinstance(email, str) else {},
    )
    return status_event_rows(workspace_id, [provider_event], received_at)


def _parse_event(raw_body: bytes) -> dict[str, Any]:
    event = parse_json_body(raw_body)
    if not isinstance(event, dict):
        raise InvalidInput("body must be a Postmark event object", field="body")
    return event
