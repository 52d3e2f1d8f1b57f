"""Mailchimp Transactional (Mandrill) email through messages/send. The message tags travel as Mandrill
`metadata`, which its webhooks return (Dittofeed §8.3).

Mandrill answers every API error with HTTP 500 and a body `{"status": "error", "name", "message"}`;
only its GeneralError (and a 5xx without such a body, e.g. from a proxy) is worth retrying. A message
Mandrill accepts but will not deliver comes back in a 200 answer with status `rejected` or `invalid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    ProviderRejected,
    ProviderUnavailable,
    require_fields,
)
from engine.messaging.providers.http_calls import base64_text, call, json_object, text_or_none

MAILCHIMP = "MailChimp"
DEFAULT_BASE_URL = "https://mandrillapp.com"
_TRANSIENT_ERRORS = frozenset({"GeneralError"})
_UNDELIVERABLE = frozenset({"rejected", "invalid"})


class MandrillSender:
    def __init__(self, api_key: str, context: ProviderContext) -> None:
        self._api_key = api_key
        self._context = context
        self._url = context.endpoint(MAILCHIMP, DEFAULT_BASE_URL) + "/api/1.0/messages/send.json"

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        response = call(
            self._context,
            MAILCHIMP,
            "POST",
            self._url,
            json={"key": self._api_key, "message": message_body(message)},
        )
        if not response.is_success:
            raise_for_error_answer(response.status_code, json_object(response))
        results = _json_list(response)
        # One result per recipient; the `to` recipient's decides (Dittofeed reads the first).
        first = next((r for r in results if str(r.get("email", "")).lower() == message.to.lower()), None)
        first = first or (results[0] if results else None)
        if first is None:
            raise ProviderUnavailable(f"{MAILCHIMP} answered without a result for the recipient")
        status = text_or_none(first.get("status")) or "unknown"
        if status in _UNDELIVERABLE:
            reason = text_or_none(first.get("reject_reason")) or status
            raise ProviderRejected(
                f"{MAILCHIMP} refused the message ({status})",
                {"type": MAILCHIMP, "name": status, "message": reason},
            )
        details: ProviderDetails = {"type": MAILCHIMP}
        message_id = text_or_none(first.get("_id"))
        if message_id:
            details["messageId"] = message_id
        return details


def raise_for_error_answer(status_code: int, answer: dict[str, Any]) -> None:
    name = text_or_none(answer.get("name"))
    if status_code == 429 or (status_code >= 500 and (name is None or name in _TRANSIENT_ERRORS)):
        raise ProviderUnavailable(f"{MAILCHIMP} answered {status_code}")
    raise ProviderRejected(
        f"{MAILCHIMP} refused the message ({name or status_code})",
        {
            "type": MAILCHIMP,
            "name": name or f"http_{status_code}",
            "message": text_or_none(answer.get("message")) or f"HTTP {status_code}",
        },
    )


def message_body(message: EmailMessage) -> dict[str, Any]:
    recipients = [{"email": message.to, "type": "to"}]
    recipients += [{"email": address, "type": "cc"} for address in message.cc]
    recipients += [{"email": address, "type": "bcc"} for address in message.bcc]
    headers = dict(message.headers)
    if message.reply_to:
        headers["Reply-To"] = message.reply_to
    body: dict[str, Any] = {
        "html": message.body,
        "subject": message.subject,
        "from_email": message.from_address,
        "to": recipients,
    }
    if message.name:
        body["from_name"] = message.name
    if message.cc:
        # Without it Mandrill sends each recipient a separate copy and the Cc header is lost.
        body["preserve_recipients"] = True
    if headers:
        body["headers"] = headers
    if message.tags:
        body["metadata"] = dict(message.tags)
    if message.attachments:
        body["attachments"] = [
            {"type": a.mime_type, "name": a.name, "content": base64_text(a.data)} for a in message.attachments
        ]
    return body


def _json_list(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        return []
    return [item for item in parsed if isinstance(item, dict)]


def build_mailchimp(config: Mapping[str, Any], context: ProviderContext) -> MandrillSender:
    (api_key,) = require_fields(MAILCHIMP, config, "apiKey")
    return MandrillSender(api_key, context)
