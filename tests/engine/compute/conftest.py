"""A tiny event history builder and a way to compute a definition over it, straight on the store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.compute.compile import compile_segment, compile_user_property
from engine.compute.run import Target, compute_period, last_period
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.storage.event_store import EventStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class History:
    store: EventStore
    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    clock: datetime = NOW - timedelta(days=1)

    def send(self, kind: str, user: str, at: datetime | None = None, **message: Any) -> None:
        """Store one event; `at` is its event time, processing times increase as sent."""
        self.clock += timedelta(milliseconds=10)
        raw: dict[str, Any] = {"userId": user, "messageId": str(uuid.uuid4()), **message}
        if at is not None:
            raw["timestamp"] = at.isoformat()
        rows = build_rows(self.workspace_id, kind, raw, self.clock)
        self.store.insert(
            "user_events_v2", [row.values(self.clock) for row in rows], EVENT_COLUMNS, EVENT_COLUMN_TYPES
        )

    def identify(self, user: str, at: datetime | None = None, **traits: Any) -> None:
        self.send("identify", user, at, traits=traits)

    def track(self, user: str, event: str, at: datetime | None = None, **properties: Any) -> None:
        self.send("track", user, at, event=event, properties=properties)

    def segment(self, definition: dict[str, Any], *, name: str = "segment", now: datetime = NOW) -> set[str]:
        segment_id = str(uuid.uuid4())
        compiled = compile_segment(segment_id, name, definition, "1")
        self.compute(Target(self.workspace_id, "segment", segment_id, "1", compiled), now)
        return {user for user, value in self.assignments(segment_id).items() if value == "true"}

    def user_property(self, definition: dict[str, Any], *, now: datetime = NOW) -> dict[str, str]:
        property_id = str(uuid.uuid4())
        compiled = compile_user_property(property_id, definition, "1")
        self.compute(Target(self.workspace_id, "user_property", property_id, "1", compiled), now)
        return self.assignments(property_id)

    def compute(self, target: Target, now: datetime) -> int:
        since = last_period(self.store, self.workspace_id, target.property_id, target.version)
        return compute_period(self.store, target, since=since, now=now)

    def assignments(self, property_id: str) -> dict[str, str]:
        """Latest value per user: 'true'/'false' for segments, the JSON text for user properties."""
        rows = self.store.query(
            "SELECT user_id, toString(type), argMax(segment_value, assigned_at),"
            " argMax(user_property_value, assigned_at) FROM computed_property_assignments_v2"
            " WHERE workspace_id = {w:String} AND computed_property_id = {p:String} GROUP BY user_id, type",
            {"w": self.workspace_id, "p": property_id},
        )
        return {
            user: (("true" if segment_value else "false") if kind == "segment" else value)
            for user, kind, segment_value, value in rows
        }


@pytest.fixture
def history(event_store: EventStore) -> History:
    return History(event_store)
