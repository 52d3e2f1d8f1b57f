"""A tiny event history builder and ways to compute a definition over it: through the compute loop
(SQL resources in, SQL assignment copies out) or straight on the event store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.compute.compile import compile_segment, compile_user_property
from engine.compute.loop import compute_workspace
from engine.compute.run import STEP, Target, compute_period, last_period, record_periods
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.event_store import EventStore
from engine.storage.models import Workspace
from engine.storage.resource_models import Segment, UserProperty

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class History:
    store: EventStore
    # With SQL sessions, definitions are stored as resources and computed by the compute loop, and
    # results are read from the SQL copies (after checking they agree with ClickHouse).
    sessions: sessionmaker[Session] | None = None
    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    clock: datetime = NOW - timedelta(days=1)

    def __post_init__(self) -> None:
        if self.sessions is not None:
            with self.sessions.begin() as session:
                session.add(Workspace(id=self.workspace_id, name=f"history {self.workspace_id}"))

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

    def segment(
        self, definition: dict[str, Any], *, name: str | None = None, now: datetime = NOW
    ) -> set[str]:
        segment_id = str(uuid.uuid4())
        name = name or f"segment {segment_id}"
        if self.sessions is None:
            compiled = compile_segment(segment_id, name, definition, "1")
            self.compute(Target(self.workspace_id, "segment", segment_id, "1", compiled), now)
            return {user for user, value in self.assignments(segment_id).items() if value == "true"}
        with self.sessions.begin() as session:
            session.add(
                Segment(id=segment_id, workspace_id=self.workspace_id, name=name, definition=definition)
            )
        self._compute_stored(segment_id, now)
        with self.sessions() as session:
            copied = session.execute(
                select(SegmentAssignment.user_id, SegmentAssignment.in_segment).where(
                    SegmentAssignment.segment_id == segment_id
                )
            )
            members = {user for user, member in copied if member}
        assert members == {user for user, value in self.assignments(segment_id).items() if value == "true"}
        return members

    def user_property(self, definition: dict[str, Any], *, now: datetime = NOW) -> dict[str, str]:
        property_id = str(uuid.uuid4())
        if self.sessions is None:
            compiled = compile_user_property(property_id, definition, "1")
            self.compute(Target(self.workspace_id, "user_property", property_id, "1", compiled), now)
            return self.assignments(property_id)
        with self.sessions.begin() as session:
            session.add(
                UserProperty(
                    id=property_id,
                    workspace_id=self.workspace_id,
                    name=f"p {property_id}",
                    definition=definition,
                )
            )
        self._compute_stored(property_id, now)
        with self.sessions() as session:
            copied = session.execute(
                select(UserPropertyAssignment.user_id, UserPropertyAssignment.value).where(
                    UserPropertyAssignment.user_property_id == property_id
                )
            )
            values = {user: value for user, value in copied if value}
        assert values == {user: value for user, value in self.assignments(property_id).items() if value}
        return values

    def _compute_stored(self, property_id: str, now: datetime) -> None:
        assert self.sessions is not None
        summary = compute_workspace(self.sessions, self.store, self.workspace_id, now=now, only={property_id})
        assert (summary.properties, summary.failed) == (1, 0)

    def compute(self, target: Target, now: datetime, *, states_added: bool = False) -> int:
        """Run one period (its states already added by `add_states`, if so); return how many
        assignments it changed (those stamped `now`)."""
        since = last_period(self.store, self.workspace_id, target.property_id, target.version)
        compute_period(self.store, target, since=since, now=now, states_added=states_added)
        record_periods(self.store, [(target, STEP)], now)
        [(changed,)] = self.store.query(
            "SELECT count() FROM computed_property_assignments_v2 WHERE workspace_id = {w:String}"
            " AND computed_property_id = {p:String} AND assigned_at = {now:DateTime64(3, 'UTC')}",
            {"w": self.workspace_id, "p": target.property_id, "now": now},
        )
        return int(changed)

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
def history(event_store: EventStore, sessions: sessionmaker[Session]) -> History:
    """On every pairing of SQL database (SQLite, Postgres) and ClickHouse (chdb, HTTP)."""
    return History(event_store, sessions)
