"""Postmark email through its Email API (POST /email). The message-metadata tags travel as `Metadata`,
which Postmark returns on its delivery, bounce, open and click webhooks (Dittofeed §8.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    ProviderRejected,
    require_fields,
)
from engine.messaging.providers.http_calls import (
    base64_text,
    call,
    json_object,
    mailbox,
    metadata_tags,
    raise_for_failure,
    text_or_none,
)

POSTMARK = "PostMark"
DEFAULT_BASE_URL = "https://api.postmarkapp.com"
DEFAULT_MESSAGE_STREAM = "outbound"


class PostmarkSender:
    def __init__(self, server_token: str, message_stream: str, context: ProviderContext) -> None:
        self._server_token = server_token
        self._message_stream = message_stream
        self._context = context
        self._url = context.endpoint(POSTMARK, DEFAULT_BASE_URL) + "/email"

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        response = call(
            self._context,
            POSTMARK,
            "POST",
            self._url,
            json=email_body(message, self._message_stream),
            headers={"Accept": "application/json", "X-Postmark-Server-Token": self._server_token},
        )
        answer = json_object(response)
        error_code = answer.get("ErrorCode", 0)
        details = {
            "type": POSTMARK,
            "name": str(error_code),
            "message": text_or_none(answer.get("Message")) or f"HTTP {response.status_code}",
        }
        if not response.is_success:
            raise_for_failure(POSTMARK, response, details)
        if error_code:  # Postmark reports some refusals inside a 200 answer
            raise ProviderRejected(f"{POSTMARK} refused the message (ErrorCode {error_code})", details)
        sent: ProviderDetails = {"type": POSTMARK}
        message_id = text_or_none(answer.get("MessageID"))
        if message_id:
            sent["messageId"] = message_id
        return sent


def email_body(message: EmailMessage, message_stream: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "From": mailbox(message.from_address, message.name),
        "To": message.to,
        "Subject": message.subject,
        "HtmlBody": message.body,
        "MessageStream": message_stream,
    }
    if message.cc:
        body["Cc"] = ", ".join(message.cc)
    if message.bcc:
        body["Bcc"] = ", ".join(message.bcc)
    if message.reply_to:
        body["ReplyTo"] = message.reply_to
    if message.headers:
        body["Headers"] = [{"Name": name, "Value": value} for name, value in message.headers.items()]
    metadata = metadata_tags(message.tags)
    if metadata:
        body["Metadata"] = metadata
    if message.attachments:
        body["Attachments"] = [
            {"Name": a.name, "Content": base64_text(a.data), "ContentType": a.mime_type}
            for a in message.attachments
        ]
    return body


def build_postmark(config: Mapping[str, Any], context: ProviderContext) -> PostmarkSender:
    (server_token,) = require_fields(POSTMARK, config, "apiKey")
    message_stream = text_or_none(config.get("messageStream")) or DEFAULT_MESSAGE_STREAM
    return PostmarkSender(server_token, message_stream, context)
