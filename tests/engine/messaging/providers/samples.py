"""The messages the provider tests send: every optional field set, tags as the send pipeline adds them."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.messaging.providers.base import Attachment, EmailMessage

TAGS = {
    "workspaceId": "0b7e6f4e-3c1a-4f55-9a43-5f1f2b1d0c11",
    "messageId": "6f2d0c1e-8a7b-4c3d-9e2f-1a0b9c8d7e6f",
    "userId": "ana.lima@example.com",  # user ids may hold characters some providers refuse in tags
    "templateId": "9c1b2a3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
    "journeyId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "nodeId": "welcome-email",
    "runId": "2b3c4d5e-6f70-4b8c-9d0e-1f2a3b4c5d6e",
    "channel": "Email",  # not a message-metadata field: Postmark must not receive it
}
ATTACHMENT = Attachment(name="invoice.pdf", mime_type="application/pdf", data=b"%PDF-1.7\n\x00\xff binary")


def sample_email(**changes: Any) -> EmailMessage:
    message = EmailMessage(
        from_address="ana@acme.example",
        name="Ana from Acme",
        to="bruno@customer.example",
        cc=("carla@customer.example",),
        bcc=("audit@acme.example",),
        reply_to="support@acme.example",
        subject="Your invoice",
        body="<html><body><p>Hello Bruno — here is your invoice.</p></body></html>",
        headers={"X-Campaign": "spring", "List-Unsubscribe": "<https://acme.example/u/1>"},
        attachments=(ATTACHMENT,),
        tags=TAGS,
    )
    return dataclasses.replace(message, **changes)
