"""SendGrid email through the v3 Mail Send API (POST /v3/mail/send). The message tags travel as the
personalization's `custom_args`, which SendGrid hands back on every event webhook (Dittofeed §8.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    raise_for_http_status,
    require_fields,
)
from engine.messaging.providers.http_calls import base64_text, call

SENDGRID = "SendGrid"
DEFAULT_BASE_URL = "https://api.sendgrid.com"


class SendGridSender:
    def __init__(self, api_key: str, context: ProviderContext) -> None:
        self._api_key = api_key
        self._context = context
        self._url = context.endpoint(SENDGRID, DEFAULT_BASE_URL) + "/v3/mail/send"

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        response = call(
            self._context,
            SENDGRID,
            "POST",
            self._url,
            json=mail_send_body(message),
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        raise_for_http_status(SENDGRID, response)
        details: ProviderDetails = {"type": SENDGRID}
        message_id = response.headers.get("X-Message-Id")
        if message_id:
            details["messageId"] = message_id
        return details


def mail_send_body(message: EmailMessage) -> dict[str, Any]:
    """The documented v3 request. SendGrid keeps the sender's display name in `from.name`."""
    personalization: dict[str, Any] = {"to": [{"email": message.to}]}
    # SendGrid refuses a personalization that names one address twice across to, cc and bcc.
    seen = {message.to.lower()}
    for field in ("cc", "bcc"):
        unique = []
        for address in getattr(message, field):
            if address.lower() not in seen:
                seen.add(address.lower())
                unique.append({"email": address})
        if unique:
            personalization[field] = unique
    if message.tags:
        personalization["custom_args"] = dict(message.tags)

    sender: dict[str, str] = {"email": message.from_address}
    if message.name:
        sender["name"] = message.name
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": sender,
        "subject": message.subject,
        "content": [{"type": "text/html", "value": message.body}],
    }
    if message.reply_to:
        body["reply_to"] = {"email": message.reply_to}
    if message.headers:
        body["headers"] = dict(message.headers)
    if message.attachments:
        body["attachments"] = [
            {
                "content": base64_text(attachment.data),
                "filename": attachment.name,
                "type": attachment.mime_type,
                "disposition": "attachment",
            }
            for attachment in message.attachments
        ]
    return body


def build_sendgrid(config: Mapping[str, Any], context: ProviderContext) -> SendGridSender:
    (api_key,) = require_fields(SENDGRID, config, "apiKey")
    return SendGridSender(api_key, context)
