"""MailChimp Transactional (Mandrill) webhooks (Dittofeed §5.2, §8.3).

Mandrill posts a form with one parameter, `mandrill_events`, a JSON array of events, and signs it
(`x-mandrill-signature`) with the `mailchimp` secret's `webhookKey` as `form_signatures` describes, over
the webhook URL as configured in Mandrill. Tags are each message's `msg.metadata`; the event time is
`ts` (unix seconds).

Upstream takes the workspace from the first event and then writes every event into the workspace its own
metadata names; here a workspace's events are written only if the request verifies under that
workspace's key. No workspace or no secret is a 400; a bad signature or only ineligible workspaces a
401.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.events import EventRow
from engine.messaging.webhooks.form_signatures import form_signature_matches, parse_form
from engine.messaging.webhooks.status_events import (
    ProviderEvent,
    StatusEventName,
    from_unix_seconds,
    pick_tags,
    status_event_rows,
)
from engine.messaging.webhooks.tenancy import MAILCHIMP_SECRET, authorize_workspaces, parse_workspace_id

SIGNATURE_HEADER = "x-mandrill-signature"

# `send`, `deferral`, `soft_bounce`, `reject` and `unsub` are ignored, as upstream.
EVENT_NAMES = {
    "open": StatusEventName.EMAIL_OPENED,
    "click": StatusEventName.EMAIL_CLICKED,
    "hard_bounce": StatusEventName.EMAIL_BOUNCED,
    "spam": StatusEventName.EMAIL_MARKED_SPAM,
    "delivered": StatusEventName.EMAIL_DELIVERED,
}


def receive_mandrill(
    session: Session, raw_body: bytes, url: str, signature: str | None, received_at: datetime
) -> list[EventRow]:
    """The status event rows of a signed Mandrill delivery; `url` is the public URL Mandrill called.

    :raises InvalidInput: no signature header, a malformed body, no workspace, or no secret.
    :raises NotAuthenticated: the signature verifies for no named workspace, or only for ineligible ones.
    """
    if signature is None:
        raise InvalidInput(
            f"headers must have required property '{SIGNATURE_HEADER}'", field=SIGNATURE_HEADER
        )
    params = parse_form(raw_body)
    events = _parse_events(params)
    claimed = [
        (workspace_id, event)
        for event in events
        if (workspace_id := parse_workspace_id(_metadata(event).get("workspaceId"))) is not None
    ]
    if not claimed:
        raise InvalidInput("Missing workspaceId in metadata.", field="body/mandrill_events/0/msg/metadata")

    def verify(config: Mapping[str, Any]) -> bool | None:
        key = config.get("webhookKey")
        if not isinstance(key, str) or not key:
            return None
        return form_signature_matches(key, url, params, signature)

    accepted = authorize_workspaces(session, (ws for ws, _ in claimed), MAILCHIMP_SECRET, verify)
    rows: list[EventRow] = []
    for workspace_id in accepted:
        mapped = [_to_provider_event(event) for ws, event in claimed if ws == workspace_id]
        rows.extend(status_event_rows(workspace_id, [e for e in mapped if e is not None], received_at))
    return rows


def _parse_events(params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    values = [value for name, value in params if name == "mandrill_events"]
    if len(values) != 1:
        raise InvalidInput("body must have required property 'mandrill_events'", field="body/mandrill_events")
    try:
        events = json.loads(values[0])
    except (ValueError, RecursionError):
        raise InvalidInput("mandrill_events is not valid JSON", field="body/mandrill_events") from None
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise InvalidInput("mandrill_events must be an array of event objects", field="body/mandrill_events")
    return events


def _metadata(event: Mapping[str, Any]) -> dict[str, Any]:
    msg = event.get("msg")
    metadata = msg.get("metadata") if isinstance(msg, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _to_provider_event(event: Mapping[str, Any]) -> ProviderEvent | None:
    kind = event.get("event")
    name = EVENT_NAMES.get(kind) if isinstance(kind, str) else None
    msg = event.get("msg")
    msg = msg if isinstance(msg, dict) else {}
    message_id = msg.get("_id")
    occurred_at = from_unix_seconds(event.get("ts"))
    if name is None or not isinstance(kind, str) or not isinstance(message_id, str) or occurred_at is None:
        return None
    email = msg.get("email")
    return ProviderEvent(
        name=name,
        provider_event_type=kind,
        provider_message_id=message_id,
        tags=pick_tags(_metadata(event)),
        occurred_at=occurred_at,
        fields={"email": email} if isinstance(email, str) else {},
    )
