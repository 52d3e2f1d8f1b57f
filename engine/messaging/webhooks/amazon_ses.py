"""Amazon SES event publishing through an SNS topic (Dittofeed §5.2, §8.3).

The SNS envelope is verified by `sns.SnsVerifier` (the caller does that first, outside any transaction,
because it may fetch a certificate). Its `Message` is the SES event: `eventType` (or `notificationType`
for identity notifications), the `mail` object whose `tags` map each tag name to a list of values, and a
sub-object per type whose `timestamp` is the event time.

An SNS signature only proves the message came through *some* AWS account's topic, not the workspace's.
When the workspace's `amazonses` secret (or its parent's) names `snsTopicArn` (one ARN, or several
separated by commas), a notification from any other topic is refused; without it anyone's topic is
accepted, as upstream. Notifications without a workspace tag, or for a workspace that cannot receive
events, are dropped with a 200 (a non-2xx would only make SNS retry).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.events import EventRow
from engine.messaging.webhooks.sns import InvalidSnsSignature
from engine.messaging.webhooks.status_events import (
    ProviderEvent,
    StatusEventName,
    parse_json_body,
    parse_time,
    pick_tags,
    status_event_rows,
)
from engine.messaging.webhooks.tenancy import (
    AMAZON_SES_SECRET,
    can_receive_events,
    find_provider_config,
    parse_workspace_id,
)

# SES event type → (DF event, the sub-object carrying its timestamp); Send, Reject and others ignored.
EVENT_TYPES: dict[str, tuple[StatusEventName, str]] = {
    "Bounce": (StatusEventName.EMAIL_BOUNCED, "bounce"),
    "Complaint": (StatusEventName.EMAIL_MARKED_SPAM, "complaint"),
    "Delivery": (StatusEventName.EMAIL_DELIVERED, "delivery"),
    "Open": (StatusEventName.EMAIL_OPENED, "open"),
    "Click": (StatusEventName.EMAIL_CLICKED, "click"),
}
# Where each sub-object lists its recipients, when it does.
_RECIPIENTS = {"bounce": "bouncedRecipients", "complaint": "complainedRecipients", "delivery": "recipients"}


def parse_sns_message(raw_body: bytes) -> dict[str, Any]:
    """The SNS envelope, read as JSON whatever the content type (SNS sends `text/plain`).

    :raises InvalidInput: the body is not a JSON object.
    """
    message = parse_json_body(raw_body)
    if not isinstance(message, dict):
        raise InvalidInput("body must be an SNS message object", field="body")
    return message


def ses_status_rows(
    session: Session, notification: Mapping[str, Any], received_at: datetime
) -> list[EventRow]:
    """The status event rows of a verified SNS Notification carrying an SES event.

    :raises InvalidInput: the notification's Message is not an SES event.
    :raises InvalidSnsSignature: the workspace accepts only other SNS topics.
    """
    event = _parse_ses_event(notification.get("Message"))
    mail = event["mail"]
    tags = pick_tags(_unwrap_tags(mail.get("tags")))
    workspace_id = parse_workspace_id(tags.get("workspaceId"))
    if workspace_id is None:
        return []
    config = find_provider_config(session, workspace_id, AMAZON_SES_SECRET, having="snsTopicArn") or {}
    if not _topic_allowed(config.get("snsTopicArn"), notification.get("TopicArn")):
        raise InvalidSnsSignature()
    if not can_receive_events(session, workspace_id):
        return []
    kind = event.get("eventType") or event.get("notificationType")
    mapped = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if mapped is None or not isinstance(kind, str):
        return []
    name, detail_key = mapped
    detail = event.get(detail_key)
    detail = detail if isinstance(detail, dict) else {}
    occurred_at = parse_time(detail.get("timestamp")) or parse_time(mail.get("timestamp")) or received_at
    provider_event = ProviderEvent(
        name=name,
        provider_event_type=kind,
        provider_message_id=mail["messageId"],
        tags=tags,
        occurred_at=occurred_at,
        fields=_recipient(mail, detail, detail_key),
    )
    return status_event_rows(workspace_id, [provider_event], received_at)


def _parse_ses_event(message: object) -> dict[str, Any]:
    try:
        event = json.loads(message) if isinstance(message, str) else None
    except (ValueError, RecursionError):
        event = None
    mail = event.get("mail") if isinstance(event, dict) else None
    if (
        not isinstance(event, dict)
        or not isinstance(mail, dict)
        or not isinstance(mail.get("messageId"), str)
    ):
        raise InvalidInput("Message is not an Amazon SES event", field="body/Message")
    return event


def _unwrap_tags(tags: object) -> dict[str, Any]:
    """SES gives each tag as a list of values; the first one is the tag's value."""
    if not isinstance(tags, dict):
        return {}
    return {name: values[0] for name, values in tags.items() if isinstance(values, list) and values}


def _topic_allowed(allowed: object, topic_arn: object) -> bool:
    if not isinstance(allowed, str) or not allowed.strip():
        return True
    return topic_arn in {arn.strip() for arn in allowed.split(",") if arn.strip()}


def _recipient(mail: Mapping[str, Any], detail: Mapping[str, Any], detail_key: str) -> dict[str, str]:
    listed = detail.get(_RECIPIENTS.get(detail_key, ""))
    if isinstance(listed, list) and listed:
        first = listed[0]
        email = first.get("emailAddress") if isinstance(first, dict) else first
        if isinstance(email, str):
            return {"email": email}
    destination = mail.get("destination")
    if isinstance(destination, list) and destination and isinstance(destination[0], str):
        return {"email": destination[0]}
    return {}
