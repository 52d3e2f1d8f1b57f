"""Processing computed assignments (Dittofeed's ProcessAssignments step): the assignments a period
changed are copied to SQL and handed to the listeners that act on membership changes (journeys).

Each run reads the ClickHouse assignments stamped after the previous ProcessAssignments period of the
property, up to `now`, upserts them, calls the listeners, and only then is its period recorded (by the
compute loop, `run.record_periods`). A crash anywhere before that repeats the whole step: the upsert
is idempotent, so listeners see a change at least once and must key what they do by (property, user,
assigned_at).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import delete
from sqlalchemy.orm import Session

from engine.compute.run import Kind
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.event_store import EventStore

STEP = "ProcessAssignments"
_CHUNK = 2000


class AssignmentChange(NamedTuple):
    """A user's new membership of a segment (`in_segment`) or value of a user property (`value`,
    JSON text, '' when it no longer has one)."""

    workspace_id: str
    kind: Kind
    property_id: str
    user_id: str
    in_segment: bool
    value: str
    assigned_at: datetime


AssignmentListener = Callable[[Sequence[AssignmentChange]], None]


def copy_changes(
    session: Session,
    kind: Kind,
    changes: Sequence[AssignmentChange],
    *,
    listeners: Sequence[AssignmentListener] = (),
) -> None:
    """Copy `changes` (`read_changes` since the last ProcessAssignments period) to SQL and commit,
    then tell `listeners` (when something changed). The caller records the period after."""
    _upsert(session, kind, changes)
    session.commit()
    if changes:
        for listener in listeners:
            listener(changes)


def read_changes(
    store: EventStore,
    workspace_id: str,
    kind: Kind,
    property_id: str,
    *,
    since: datetime | None,
    now: datetime,
) -> list[AssignmentChange]:
    """Each user's latest assignment stamped in (`since`, `now`]."""
    window = "assigned_at <= {now:DateTime64(3, 'UTC')}"
    parameters: dict[str, Any] = {
        "workspace": workspace_id,
        "kind": kind,
        "property": property_id,
        "now": now,
    }
    if since is not None:
        window += " AND assigned_at > {since:DateTime64(3, 'UTC')}"
        parameters["since"] = since
    rows = store.query(
        "SELECT user_id, argMax(segment_value, assigned_at), argMax(user_property_value, assigned_at),"
        " max(assigned_at) FROM computed_property_assignments_v2"
        " WHERE workspace_id = {workspace:String} AND type = {kind:String}"
        # In key order: SQL indexes take sorted rows several times faster than random ones.
        f" AND computed_property_id = {{property:String}} AND {window} GROUP BY user_id ORDER BY user_id",
        parameters,
    )
    # clickhouse-connect returns DateTime64(3, 'UTC') values naive; the rows of one period share a
    # handful of stamps, so each is made aware once.
    aware: dict[datetime, datetime] = {}
    return [
        AssignmentChange(
            workspace_id,
            kind,
            property_id,
            user_id,
            bool(member),
            value,
            aware.get(at) or aware.setdefault(at, at.replace(tzinfo=UTC) if at.tzinfo is None else at),
        )
        for user_id, member, value, at in rows
    ]


def forget_user_assignments(session: Session, workspace_id: str, user_ids: Sequence[str]) -> None:
    """Delete the users' SQL assignment copies (the users were deleted)."""
    for model in (SegmentAssignment, UserPropertyAssignment):
        session.execute(
            delete(model).where(model.workspace_id == workspace_id, model.user_id.in_(list(user_ids)))
        )


# Per kind: the SQL copy's table, its property-id column, and its value column with where the value
# comes from.
_COPIES: dict[str, tuple[Any, str, str, Callable[[AssignmentChange], Any]]] = {
    "segment": (SegmentAssignment.__table__, "segment_id", "in_segment", attrgetter("in_segment")),
    "user_property": (UserPropertyAssignment.__table__, "user_property_id", "value", attrgetter("value")),
}


def _upsert(session: Session, kind: Kind, changes: Sequence[AssignmentChange]) -> None:
    table, property_column, value_column, value_of = _COPIES[kind]
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {table.name} (workspace_id, {property_column}, user_id, {value_column}, assigned_at)"
        f" VALUES ({', '.join([mark] * 5)})"
        f" ON CONFLICT (workspace_id, {property_column}, user_id) DO UPDATE"
        f" SET {value_column} = excluded.{value_column}, assigned_at = excluded.assigned_at"
        # Latest assignment wins, as in ClickHouse: a copy that began before an immediate write (a
        # subscription change) must not put the older value back.
        f" WHERE {table.name}.assigned_at <= excluded.assigned_at"
    )
    # Rows go to the driver as tuples: on a full recompute's hundreds of thousands of rows, SQLAlchemy's
    # per-row dicts and bind processing cost half as much again as the database's own work. Values
    # are bound as the column types bind them for this database (on SQLite, the text the ORM writes,
    # rather than the driver's own datetime adapter, per row); a period's few stamps are converted once.
    dialect = connection.dialect
    bind_time = table.c.assigned_at.type.dialect_impl(dialect).bind_processor(dialect)
    stamps: dict[datetime, Any] = {}
    for start in range(0, len(changes), _CHUNK):
        rows = [
            (
                change.workspace_id,
                change.property_id,
                change.user_id,
                value_of(change),
                stamps.get(change.assigned_at)
                or stamps.setdefault(change.assigned_at, bind_time(change.assigned_at)),
            )
            for change in changes[start : start + _CHUNK]
        ]
        connection.exec_driver_sql(statement, rows)
