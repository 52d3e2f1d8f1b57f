"""SendGrid's Event Webhook (Dittofeed §5.2, §8.3).

The body is a JSON array of events; the send's tags arrive as custom args, top-level keys of each event.
SendGrid signs `timestamp + rawBody` with ECDSA P-256/SHA-256 (headers
`x-twilio-email-event-webhook-signature`, base64 DER, and `-timestamp`); the verification key is the
public key shown in SendGrid's settings (base64 DER, stored as the `sendgrid` secret's `webhookKey`).

Bounce and spam-report events may come without custom args. They are joined to the earlier `processed`
event of the same `smtp-id`, which Dittofeed stores under the messageId `processed:<smtp-id>`, and
belong to that event's workspace — only if the request verifies under that workspace's key. Every
answer but 200 is a 400 `{message}`, as upstream.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.events import EventRow
from engine.messaging.webhooks.status_events import (
    ProviderEvent,
    StatusEventName,
    from_unix_seconds,
    parse_json_body,
    pick_tags,
    status_event_rows,
)
from engine.messaging.webhooks.tenancy import (
    SENDGRID_SECRET,
    Refusals,
    authorize_workspaces,
    parse_workspace_id,
)
from engine.storage.event_store import EventStore

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

EVENT_NAMES = {
    "processed": StatusEventName.EMAIL_PROCESSED,
    "delivered": StatusEventName.EMAIL_DELIVERED,
    "open": StatusEventName.EMAIL_OPENED,
    "click": StatusEventName.EMAIL_CLICKED,
    "bounce": StatusEventName.EMAIL_BOUNCED,
    "dropped": StatusEventName.EMAIL_DROPPED,
    "spamreport": StatusEventName.EMAIL_MARKED_SPAM,
}
# Asynchronous events, identified by smtp-id (SendGrid may omit sg_message_id and the custom args).
_BY_SMTP_ID = frozenset({"processed", "bounce", "spamreport"})
_JOINED = frozenset({"bounce", "spamreport"})

REFUSALS = Refusals(
    missing_secret=lambda: InvalidInput("Missing secret.", field="secret"),
    invalid_signature=lambda: InvalidInput("Invalid signature.", field=SIGNATURE_HEADER),
    ineligible=lambda: InvalidInput("WorkspaceIneligible", field="workspaceId"),
)


def load_webhook_key(webhook_key: object) -> ec.EllipticCurvePublicKey | None:
    """The EC public key of a `webhookKey` (base64 DER, with or without PEM armour); None if unusable."""
    if not isinstance(webhook_key, str):
        return None
    body = "".join(line for line in webhook_key.strip().splitlines() if not line.startswith("-----"))
    try:
        key = load_der_public_key(base64.b64decode("".join(body.split()), validate=True))
    except (binascii.Error, ValueError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def signature_verifies(
    key: ec.EllipticCurvePublicKey, signature: str, timestamp: str, raw_body: bytes
) -> bool:
    """Whether `signature` (base64 DER ECDSA) signs `timestamp + raw_body` under `key`."""
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + raw_body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def receive_sendgrid(
    session: Session,
    event_store: EventStore,
    raw_body: bytes,
    signature: str | None,
    timestamp: str | None,
    received_at: datetime,
) -> list[EventRow]:
    """The status event rows of a signed delivery, for the workspaces whose key verifies it.

    :raises InvalidInput: missing headers, a body that is not an array of events, no workspace, no
        secret, a signature that verifies for no named workspace, or only ineligible workspaces.
    """
    if not signature or not timestamp:
        raise InvalidInput(
            "Missing signature headers.", field=SIGNATURE_HEADER if not signature else TIMESTAMP_HEADER
        )
    events = _parse_events(raw_body)
    assigned = _assign_workspaces(event_store, events)
    if not assigned:
        raise InvalidInput("Missing workspaceId custom arg.", field="workspaceId")

    def verify(config: Mapping[str, Any]) -> bool | None:
        key = load_webhook_key(config.get("webhookKey"))
        return None if key is None else signature_verifies(key, signature, timestamp, raw_body)

    accepted = authorize_workspaces(session, (ws for ws, _ in assigned), SENDGRID_SECRET, verify, REFUSALS)
    rows: list[EventRow] = []
    for workspace_id in accepted:
        mapped = [_to_provider_event(event) for ws, event in assigned if ws == workspace_id]
        rows.extend(status_event_rows(workspace_id, [e for e in mapped if e is not None], received_at))
    return rows


def _parse_events(raw_body: bytes) -> list[dict[str, Any]]:
    events = parse_json_body(raw_body)
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise InvalidInput("body must be an array of event objects", field="body")
    return events


def _assign_workspaces(
    event_store: EventStore, events: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Each event with the workspace it claims; an arg-less bounce or spam report with the workspace (and
    tags) of every stored `processed` event of its smtp-id — the signature check later keeps only the
    workspace whose key signed the request."""
    assigned: list[tuple[str, dict[str, Any]]] = []
    orphans: list[dict[str, Any]] = []
    for event in events:
        workspace_id = parse_workspace_id(event.get("workspaceId"))
        if workspace_id is not None:
            assigned.append((workspace_id, event))
        elif event.get("event") in _JOINED and isinstance(event.get("smtp-id"), str):
            orphans.append(event)
    processed = _processed_tags(event_store, {event["smtp-id"] for event in orphans})
    for event in orphans:
        for workspace_id, tags in processed.get(event["smtp-id"], []):
            assigned.append((workspace_id, {**event, **tags}))
    return assigned


def _processed_tags(
    event_store: EventStore, smtp_ids: set[str]
) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """smtp-id → (workspace, tags) of the stored `processed` events with that smtp-id.

    The one lookup across workspaces: the event names none, and the provider-generated smtp-id is the
    only link. Nothing read here is written anywhere unless the request verifies for that workspace.
    """
    if not smtp_ids:
        return {}
    rows = event_store.select_json(
        "SELECT DISTINCT workspace_id, message_id, properties FROM user_events_v2"
        " WHERE message_id IN JSONExtract({ids:String}, 'Array(String)') AND event = {event:String}",
        {
            "ids": json.dumps(sorted(f"processed:{smtp_id}" for smtp_id in smtp_ids)),
            "event": str(StatusEventName.EMAIL_PROCESSED),
        },
    )
    found: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for workspace_id, message_id, properties in rows:
        try:
            tags = pick_tags(json.loads(properties))
        except (TypeError, ValueError):
            continue
        if tags.get("workspaceId") == workspace_id:
            found.setdefault(message_id.removeprefix("processed:"), []).append((workspace_id, tags))
    return found


def _to_provider_event(event: Mapping[str, Any]) -> ProviderEvent | None:
    kind = event.get("event")
    name = EVENT_NAMES.get(kind) if isinstance(kind, str) else None
    occurred_at = from_unix_seconds(event.get("timestamp"))
    if name is None or occurred_at is None or not isinstance(kind, str):
        return None
    smtp_id, sg_message_id = event.get("smtp-id"), event.get("sg_message_id")
    provider_message_id = smtp_id if kind in _BY_SMTP_ID else sg_message_id or smtp_id
    if not isinstance(provider_message_id, str) or not provider_message_id:
        return None
    email = event.get("email")
    return ProviderEvent(
        name=name,
        provider_event_type=kind,
        provider_message_id=provider_message_id,
        tags=pick_tags(event),
        occurred_at=occurred_at,
        fields={"email": email} if isinstance(email, str) else {},
        # The one id kept literal: later bounces and spam reports are joined to it by smtp-id.
        message_id=f"processed:{provider_message_id}" if kind == "processed" else None,
    )
