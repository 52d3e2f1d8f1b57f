"""Resend email through its API (POST /emails). The message tags travel as Resend `tags`, which come back
on its webhooks (Dittofeed §8.3); Resend allows only ASCII letters, digits, `_` and `-` in them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    require_fields,
)
from engine.messaging.providers.http_calls import (
    base64_text,
    call,
    json_object,
    mailbox,
    raise_for_failure,
    text_or_none,
)

RESEND = "Resend"
DEFAULT_BASE_URL = "https://api.resend.com"

_TAG_FORBIDDEN = re.compile(r"[^A-Za-z0-9_-]")
_TAG_MAX_LENGTH = 256


def resend_tag_text(value: str) -> str:
    """A tag name or value as Resend accepts it: every other character becomes `_` (as Dittofeed does)."""
    return _TAG_FORBIDDEN.sub("_", value)[:_TAG_MAX_LENGTH]


class ResendSender:
    def __init__(self, api_key: str, context: ProviderContext) -> None:
        self._api_key = api_key
        self._context = context
        self._url = context.endpoint(RESEND, DEFAULT_BASE_URL) + "/emails"

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        message_id = message.tags.get("messageId")
        if message_id:
            # Resend answers a repeated key with the first answer instead of sending again, which is
            # what makes resending an in-doubt message safe (engine.messaging.ledger).
            headers["Idempotency-Key"] = message_id
        response = call(self._context, RESEND, "POST", self._url, json=email_body(message), headers=headers)
        answer = json_object(response)
        if not response.is_success:
            raise_for_failure(
                RESEND,
                response,
                {
                    "type": RESEND,
                    "name": text_or_none(answer.get("name")) or f"http_{response.status_code}",
                    "message": text_or_none(answer.get("message")) or f"HTTP {response.status_code}",
                },
            )
        details: ProviderDetails = {"type": RESEND}
        provider_id = text_or_none(answer.get("id"))
        if provider_id:
            details["messageId"] = provider_id
        return details


def email_body(message: EmailMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": mailbox(message.from_address, message.name),
        "to": [message.to],
        "subject": message.subject,
        "html": message.body,
    }
    if message.cc:
        body["cc"] = list(message.cc)
    if message.bcc:
        body["bcc"] = list(message.bcc)
    if message.reply_to:
        body["reply_to"] = message.reply_to
    if message.headers:
        body["headers"] = dict(message.headers)
    if message.attachments:
        body["attachments"] = [
            {"filename": a.name, "content": base64_text(a.data)} for a in message.attachments
        ]
    tags = [
        {"name": resend_tag_text(name), "value": resend_tag_text(value)}
        for name, value in message.tags.items()
        if name and value
    ]
    if tags:
        body["tags"] = tags
    return body


def build_resend(config: Mapping[str, Any], context: ProviderContext) -> ResendSender:
    (api_key,) = require_fields(RESEND, config, "apiKey")
    return ResendSender(api_key, context)
