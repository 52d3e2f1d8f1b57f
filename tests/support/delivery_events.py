"""Delivery events (Dittofeed §8.1–8.2) of one workspace, written through the running app: sent
messages and their status events, built with `build_rows` as ingest builds them.

Without `processed_at` a row goes through the app's event writer (deduplicated, stamped with the
write time); with it, the row is inserted with that processing time, for tests about time ranges and
chart buckets (the writer always stamps "now").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.storage.event_store import EventStore

EMAIL = {
    "type": "Email",
    "from": "news@acme.test",
    "to": "ada@example.com",
    "subject": "Welcome",
    "body": "<p>Hello</p>",
    "provider": {"type": "SendGrid", "messageId": "sg-1"},
}
SMS = {
    "type": "Sms",
    "to": "+15550001",
    "body": "Your code is 1234",
    "provider": {"type": "Twilio", "sid": "SM1"},
}
WEBHOOK = {
    "type": "Webhook",
    "to": "https://hooks.example.com/in",
    "request": {"method": "POST", "url": "https://hooks.example.com/in"},
    "response": {"status": 200, "headers": {}, "body": "ok"},
}


@dataclass
class DeliveryEvents:
    client: TestClient
    workspace_id: str

    @property
    def store(self) -> EventStore:
        store: EventStore = self.client.app.state.event_store  # type: ignore[attr-defined]
        return store

    def sent(
        self,
        message_id: str,
        user: str,
        at: str,
        *,
        template: str,
        variant: dict[str, Any],
        anonymous: bool = False,
        context: dict[str, Any] | None = None,
        processed_at: datetime | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        """A `DFInternalMessageSent` event; `tags` are further properties (journeyId, nodeId, ...)."""
        properties = {"templateId": template, "messageId": message_id, **(tags or {}), "variant": variant}
        self.track(
            "DFInternalMessageSent", message_id, user, at, properties, anonymous, context, processed_at
        )

    def status(
        self,
        event: str,
        origin: str,
        user: str,
        at: str,
        *,
        message_id: str | None = None,
        hidden: bool = False,
        processed_at: datetime | None = None,
    ) -> None:
        """A status event about the message `origin` (linked by `properties.messageId`)."""
        message_id = message_id or f"{event}:{origin}"
        context = {"hidden": True} if hidden else None
        properties = {"messageId": origin, "email": f"{user}@example.com"}
        self.track(event, message_id, user, at, properties, False, context, processed_at)

    def track(
        self,
        event: str,
        message_id: str,
        user: str,
        at: str,
        properties: dict[str, Any],
        anonymous: bool = False,
        context: dict[str, Any] | None = None,
        processed_at: datetime | None = None,
    ) -> None:
        raw: dict[str, Any] = {
            "anonymousId" if anonymous else "userId": user,
            "messageId": message_id,
            "event": event,
            "timestamp": at,
            "properties": properties,
        }
        if context is not None:
            raw["context"] = context
        self.write("track", raw, processed_at)

    def write(self, kind: str, raw: dict[str, Any], processed_at: datetime | None = None) -> None:
        rows = build_rows(self.workspace_id, kind, raw, processed_at or datetime.now(UTC))
        if processed_at is None:
            self.client.app.state.event_writer.write(rows)  # type: ignore[attr-defined]
            return
        self.store.insert(
            "user_events_v2", [row.values(processed_at) for row in rows], EVENT_COLUMNS, EVENT_COLUMN_TYPES
        )
