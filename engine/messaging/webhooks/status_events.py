"""DF status events from provider webhooks (Dittofeed §8.2–8.3), shared by every provider.

A provider event becomes one `track` event on the recipient: its messageId is derived, never random,
so a webhook the provider sends twice (or an attacker replays) is the same event and the event writer
stores it once. Properties are the recipient's fields (`email`, or Twilio's `body`) plus the message
metadata tags the send attached (`workspaceId`, `messageId`, `userId`, ...); `properties.messageId` is
what links a status to its send (`origin_message_id`). An event without a `userId` tag is dropped:
there is no one to record it on.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.errors import InvalidInput
from engine.events import EventRow, build_rows
from engine.messaging.providers.base import MESSAGE_METADATA_FIELDS

# ISO 8601 with any number of fractional digits (Postmark sends seven, Resend six).
_ISO_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)


class StatusEventName(enum.StrEnum):
    EMAIL_PROCESSED = "DFEmailProcessed"
    EMAIL_DROPPED = "DFEmailDropped"
    EMAIL_DELIVERED = "DFEmailDelivered"
    EMAIL_OPENED = "DFEmailOpened"
    EMAIL_CLICKED = "DFEmailClicked"
    EMAIL_BOUNCED = "DFEmailBounced"
    EMAIL_MARKED_SPAM = "DFEmailMarkedSpam"
    SMS_DELIVERED = "DFSmsDelivered"
    SMS_FAILED = "DFSmsFailed"


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event, already mapped to its DF event name.

    `fields` are the properties besides the tags (the recipient's `email`; Twilio's `body`).
    `message_id` overrides the derived id where Dittofeed fixes one (SendGrid's `processed:<smtp-id>`,
    which later events are joined to).
    """

    name: StatusEventName
    provider_event_type: str
    provider_message_id: str
    tags: Mapping[str, str]
    occurred_at: datetime
    fields: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None


def pick_tags(source: Mapping[str, Any]) -> dict[str, str]:
    """The metadata tags present in `source` as non-empty strings; anything else a sender put there is
    ignored."""
    return {
        name: value
        for name in MESSAGE_METADATA_FIELDS
        if isinstance(value := source.get(name), str) and value
    }


def status_message_id(workspace_id: str, provider_event_type: str, provider_message_id: str) -> str:
    """uuidv5(`<providerEventType>:<providerMessageId>`, namespace = the workspace id)."""
    return str(uuid.uuid5(uuid.UUID(workspace_id), f"{provider_event_type}:{provider_message_id}"))


def status_event_rows(
    workspace_id: str, events: Iterable[ProviderEvent], received_at: datetime
) -> list[EventRow]:
    """The rows that record `events` in `workspace_id`.

    Dropped: events without a `userId` tag, and events whose own `workspaceId` tag names another
    workspace (a request verified for one workspace never writes into another).
    """
    rows: list[EventRow] = []
    for event in events:
        tags = dict(event.tags)
        user_id = tags.get("userId")
        if not user_id or tags.get("workspaceId", workspace_id) != workspace_id:
            continue
        message_id = event.message_id or status_message_id(
            workspace_id, event.provider_event_type, event.provider_message_id
        )
        message = {
            "messageId": message_id,
            "userId": user_id,
            "event": str(event.name),
            "timestamp": format_time(event.occurred_at),
            "properties": {**event.fields, **tags},
        }
        rows.extend(build_rows(workspace_id, "track", message, received_at))
    return rows


def parse_json_body(raw_body: bytes) -> Any:
    """A webhook's raw body read as JSON. :raises InvalidInput: it is not JSON (or not UTF-8)."""
    try:
        return json.loads(raw_body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput("body is not valid JSON", field="body") from None


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 text as an aware datetime (UTC when it names no zone); None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _ISO_TIME.match(value.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"] or "Z"
    zone = "+00:00" if zone == "Z" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{match['base'].replace(' ', 'T')}.{fraction}{zone}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def from_unix_seconds(value: object) -> datetime | None:
    """A unix time in seconds (a number, or its decimal text) as a UTC datetime; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, the precision of `event_time`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
