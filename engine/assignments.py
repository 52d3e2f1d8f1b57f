"""Writing computed assignments: the value of a user property, or membership of a segment, for a
user at a point in time. The latest write per (workspace, property, user) is the current value."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from engine.storage.event_store import EventStore

_COLUMNS = (
    "workspace_id",
    "type",
    "computed_property_id",
    "user_id",
    "segment_value",
    "user_property_value",
    "max_event_time",
    "assigned_at",
)
_TYPES = (
    "String",
    "Enum8('user_property' = 1, 'segment' = 2)",
    "String",
    "String",
    "Bool",
    "String",
    "DateTime64(3, 'UTC')",
    "DateTime64(3, 'UTC')",
)


@dataclass(frozen=True)
class Assignment:
    workspace_id: str
    kind: Literal["user_property", "segment"]
    computed_property_id: str
    user_id: str
    segment_value: bool = False
    # A user property's value as JSON text ('"ann@example.com"', '42'); empty when unassigned.
    user_property_value: str = ""
    max_event_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of_property(cls, workspace_id: str, property_id: str, user_id: str, value: Any) -> Assignment:
        return cls(workspace_id, "user_property", property_id, user_id, user_property_value=json.dumps(value))

    @classmethod
    def of_segment(cls, workspace_id: str, segment_id: str, user_id: str, member: bool) -> Assignment:
        return cls(workspace_id, "segment", segment_id, user_id, segment_value=member)


def write_assignments(
    store: EventStore, assignments: Sequence[Assignment], *, at: datetime | None = None
) -> None:
    """Record `assignments` as of `at` (now by default) in one insert."""
    assigned_at = at or datetime.now(UTC)
    store.insert(
        "computed_property_assignments_v2",
        [
            [
                a.workspace_id,
                a.kind,
                a.computed_property_id,
                a.user_id,
                a.segment_value,
                a.user_property_value,
                a.max_event_time,
                assigned_at,
            ]
            for a in assignments
        ],
        _COLUMNS,
        _TYPES,
    )


# Every ClickHouse table holding rows computed for one segment or user property.
COMPUTED_TABLES: tuple[str, ...] = (
    "computed_property_assignments_v2",
    "computed_property_state_v4",
    "computed_property_periods",
)


def forget_computed_property(store: EventStore, workspace_id: str, computed_property_id: str) -> None:
    """Delete everything computed for a segment or user property (it was deleted). Idempotent."""
    for table in COMPUTED_TABLES:
        store.command(
            f"DELETE FROM {table}"  # noqa: S608
            " WHERE workspace_id = {workspace:String} AND computed_property_id = {property:String}",
            {"workspace": workspace_id, "property": computed_property_id},
        )
