"""Twilio SMS status callbacks (Dittofeed §5.2, §8.3).

Dittofeed sends each SMS with `statusCallback = <DASHBOARD_URL>/api/public/webhooks/twilio?<tags>`, so
the workspace and the send's tags come back in the query string. Twilio signs the callback
(`x-twilio-signature`) with the account's auth token as `form_signatures` describes, over that full URL
and the form-encoded status parameters. The `twilio-key` secret (or the parent's) must hold
`accountSid`, `messagingServiceSid` and `authToken`, else 503. `delivered` → DFSmsDelivered, `failed` →
DFSmsFailed, other statuses are acknowledged and ignored; the event time is the time of receipt and the
properties carry the message `Body` when Twilio sends it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import InvalidInput, Unavailable
from engine.events import EventRow
from engine.messaging.webhooks.form_signatures import form_signature_matches, parse_form
from engine.messaging.webhooks.status_events import (
    ProviderEvent,
    StatusEventName,
    pick_tags,
    status_event_rows,
)
from engine.messaging.webhooks.tenancy import (
    TWILIO_SECRET,
    Refusals,
    authorize_workspaces,
    parse_workspace_id,
)

SIGNATURE_HEADER = "x-twilio-signature"
REQUIRED_CONFIG = ("accountSid", "messagingServiceSid", "authToken")

STATUSES = {"delivered": StatusEventName.SMS_DELIVERED, "failed": StatusEventName.SMS_FAILED}


class TwilioNotConfigured(Unavailable):
    def __init__(self) -> None:
        super().__init__("Twilio configuration not found")


REFUSALS = Refusals(missing_secret=TwilioNotConfigured)


def receive_twilio(
    session: Session,
    raw_body: bytes,
    url: str,
    query: Sequence[tuple[str, str]],
    signature: str | None,
    received_at: datetime,
) -> list[EventRow]:
    """The status event row of a signed callback; `url` is the public URL Twilio called, `query` its
    decoded query parameters.

    :raises InvalidInput: no signature header, no workspaceId in the query, or a malformed body.
    :raises TwilioNotConfigured: no usable `twilio-key` secret.
    :raises NotAuthenticated: the signature does not verify, or the workspace cannot receive events.
    """
    if signature is None:
        raise InvalidInput(
            f"headers must have required property '{SIGNATURE_HEADER}'", field=SIGNATURE_HEADER
        )
    tags = pick_tags(dict(query))
    workspace_id = parse_workspace_id(tags.get("workspaceId"))
    if workspace_id is None:
        raise InvalidInput(
            "querystring must have required property 'workspaceId'", field="querystring/workspaceId"
        )
    params = parse_form(raw_body)

    def verify(config: Mapping[str, Any]) -> bool | None:
        if not all(isinstance(config.get(name), str) and config[name] for name in REQUIRED_CONFIG):
            return None
        return form_signature_matches(config["authToken"], url, params, signature)

    authorize_workspaces(session, [workspace_id], TWILIO_SECRET, verify, REFUSALS)
    form = dict(params)
    status = form.get("MessageStatus") or form.get("SmsStatus")
    name = STATUSES.get(status or "")
    message_sid = form.get("MessageSid") or form.get("SmsSid")
    if name is None or status is None or not message_sid:
        return []
    body = form.get("Body")
    provider_event = ProviderEvent(
        name=name,
        provider_event_type=status,
        provider_message_id=message_sid,
        tags=tags,
        occurred_at=received_at,
        fields={"body": body} if body is not None else {},
    )
    return status_event_rows(workspace_id, [provider_event], received_at)
