"""Segments as resources, on SQLite and Postgres: Dittofeed's upsert semantics, typed errors, status,
deletion with the computed rows, and manual segments' versions and events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import manual_segments, segments
from engine.assignments import Assignment, write_assignments
from engine.errors import InvalidInput, NotFound
from engine.events import EventRow
from engine.segments import SegmentUpsert
from engine.storage.event_store import EventStore
from engine.storage.models import Workspace
from engine.storage.resource_models import ComputedPropertyStatus, ResourceType, Segment, SubscriptionGroup
from engine.workspaces import create_workspace

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
MANUAL = {"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []}


def _workspace(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        return create_workspace(session, f"w-{uuid.uuid4()}").id


def _upsert(
    sessions: sessionmaker[Session], workspace_id: str, at: datetime = T0, **fields: Any
) -> dict[str, Any]:
    with sessions.begin() as session:
        upsert = SegmentUpsert(**{"name": "Paid", **fields})
        return segments.segment_resource(segments.upsert_segment(session, workspace_id, upsert, now=at))


def _refusal(sessions: sessionmaker[Session], workspace_id: str, **fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        segments.upsert_segment(session, workspace_id, SegmentUpsert(**fields), now=T0)
    return refused.value


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_create_then_update_by_name_and_by_id(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    created = _upsert(sessions, workspace_id, definition=TRAIT)
    assert created == {
        "id": created["id"],
        "workspaceId": workspace_id,
        "name": "Paid",
        "definition": TRAIT,
        "resourceType": "Declarative",
        "status": "Running",
        "createdAt": _ms(T0),
        "updatedAt": _ms(T0),
        "definitionUpdatedAt": _ms(T0),
    }
    by_name = _upsert(sessions, workspace_id, T0 + timedelta(seconds=1), status=ComputedPropertyStatus.PAUSED)
    assert (by_name["id"], by_name["status"], by_name["definition"]) == (created["id"], "Paused", TRAIT)
    renamed = _upsert(
        sessions, workspace_id, T0 + timedelta(seconds=2), id=created["id"].upper(), name="Payers"
    )
    assert (renamed["id"], renamed["name"]) == (created["id"], "Payers")


def test_definition_updated_at_moves_only_when_the_definition_changes(
    sessions: sessionmaker[Session],
) -> None:
    workspace_id = _workspace(sessions)
    _upsert(sessions, workspace_id, definition=TRAIT)
    same = {"nodes": [], "entryNode": dict(reversed(list(TRAIT["entryNode"].items())))}  # type: ignore[attr-defined]
    unchanged = _upsert(sessions, workspace_id, T0 + timedelta(minutes=1), definition=same)
    assert unchanged["definitionUpdatedAt"] == _ms(T0)
    changed_definition = {**TRAIT, "entryNode": {**TRAIT["entryNode"], "path": "tier"}}  # type: ignore[dict-item]
    changed = _upsert(sessions, workspace_id, T0 + timedelta(minutes=2), definition=changed_definition)
    assert changed["definitionUpdatedAt"] == _ms(T0 + timedelta(minutes=2))
    assert changed["updatedAt"] >= changed["definitionUpdatedAt"]


def test_create_only_returns_the_existing_segment_unchanged(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    created = _upsert(sessions, workspace_id, definition=TRAIT)
    again = _upsert(sessions, workspace_id, T0 + timedelta(hours=1), definition=MANUAL, create_only=True)
    assert again == created


def test_a_new_segment_with_a_given_id_keeps_it_lowercased(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    wanted = str(uuid.uuid4())
    assert _upsert(sessions, workspace_id, id=wanted.upper(), definition=TRAIT)["id"] == wanted


def test_manual_segments_are_not_started_and_leaving_manual_runs(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    manual = _upsert(sessions, workspace_id, definition=MANUAL, status=ComputedPropertyStatus.RUNNING)
    assert manual["status"] == "NotStarted"
    assert _upsert(sessions, workspace_id, status=ComputedPropertyStatus.PAUSED)["status"] == "NotStarted"
    assert _upsert(sessions, workspace_id, definition=TRAIT)["status"] == "Running"
    assert _upsert(sessions, workspace_id, definition=MANUAL)["status"] == "NotStarted"


def test_typed_errors(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    other = _workspace(sessions)
    theirs = _upsert(sessions, other, definition=TRAIT)
    _upsert(sessions, workspace_id, name="Taken", definition=TRAIT)
    mine = _upsert(sessions, workspace_id, name="Mine", definition=TRAIT)
    unique = {
        "type": "UniqueConstraintViolation",
        "message": "Names must be unique in workspace. Id's must be globally unique.",
    }
    assert _refusal(sessions, workspace_id, name="X", id="not-a-uuid").body == {
        "type": "IdError",
        "message": "Invalid segment id, must be a valid v4 UUID",
    }
    assert _refusal(sessions, workspace_id, name="X", id=theirs["id"], definition=TRAIT).body == unique
    assert _refusal(sessions, workspace_id, name="Taken", id=mine["id"]).body == unique
    assert (
        _refusal(sessions, workspace_id, name="Taken", id=str(uuid.uuid4()), definition=TRAIT).body == unique
    )
    assert _refusal(sessions, workspace_id, name="New").field == "body/definition"
    with sessions() as session:
        foreign_group = session.scalars(
            select(SubscriptionGroup.id).where(SubscriptionGroup.workspace_id == other)
        ).first()
    refused = _refusal(
        sessions, workspace_id, name="X", definition=TRAIT, subscription_group_id=foreign_group
    )
    assert refused.body["type"] == "UniqueConstraintViolation"
    with sessions() as session:
        names = {
            s.name
            for s in segments.list_segments(session, workspace_id, resource_type=ResourceType.DECLARATIVE)
        }
    assert names == {"Taken", "Mine"}


def test_list_filters_by_ids_and_resource_type(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    first = _upsert(sessions, workspace_id, name="A", definition=TRAIT)
    _upsert(sessions, workspace_id, name="B", definition=TRAIT)
    with sessions() as session:
        everything = segments.list_segments(session, workspace_id)
        internal = segments.list_segments(session, workspace_id, resource_type=ResourceType.INTERNAL)
        picked = segments.list_segments(session, workspace_id, ids=[first["id"], "not-a-uuid"])
    # Every workspace starts with two Internal segments per subscription group.
    assert len(everything) == 2 + len(internal) and len(internal) == 4
    assert [s.name for s in picked] == ["A"]


def test_status_changes_and_their_refusals(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    paid = _upsert(sessions, workspace_id, definition=TRAIT)
    manual = _upsert(sessions, workspace_id, name="Hand-picked", definition=MANUAL)
    with sessions.begin() as session:
        paused = segments.set_segment_status(session, workspace_id, paid["id"], ComputedPropertyStatus.PAUSED)
        assert paused.status == ComputedPropertyStatus.PAUSED
    with pytest.raises(segments.ManualSegmentStatus), sessions.begin() as session:
        segments.set_segment_status(session, workspace_id, manual["id"], ComputedPropertyStatus.RUNNING)
    with pytest.raises(NotFound), sessions.begin() as session:
        segments.set_segment_status(session, _workspace(sessions), paid["id"], ComputedPropertyStatus.RUNNING)


def test_delete_removes_the_row_and_its_assignments(
    sessions: sessionmaker[Session], event_store: EventStore
) -> None:
    workspace_id = _workspace(sessions)
    doomed = _upsert(sessions, workspace_id, name="Doomed", definition=TRAIT)
    kept = _upsert(sessions, workspace_id, name="Kept", definition=TRAIT)
    write_assignments(
        event_store,
        [
            Assignment.of_segment(workspace_id, doomed["id"], "u1", True),
            Assignment.of_segment(workspace_id, kept["id"], "u1", True),
        ],
    )
    with sessions.begin() as session:
        segments.delete_segment(session, event_store, workspace_id, doomed["id"])
    with pytest.raises(NotFound), sessions.begin() as session:
        segments.delete_segment(session, event_store, workspace_id, doomed["id"])
    with sessions() as session:
        assert session.get(Segment, doomed["id"]) is None
    rows = event_store.query(
        "SELECT DISTINCT computed_property_id FROM computed_property_assignments_v2"
        " WHERE workspace_id = {w:String}",
        {"w": workspace_id},
    )
    assert rows == [(kept["id"],)]


def test_members_of_several_segments_are_counted_by_their_latest_assignments(
    sessions: sessionmaker[Session], event_store: EventStore
) -> None:
    workspace_id = _workspace(sessions)
    elsewhere = _workspace(sessions)
    first = _upsert(sessions, workspace_id, name="First", definition=TRAIT)["id"]
    second = _upsert(sessions, workspace_id, name="Second", definition=TRAIT)["id"]
    never = _upsert(sessions, workspace_id, name="Never computed", definition=TRAIT)["id"]
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    write_assignments(
        event_store,
        [
            Assignment.of_segment(workspace_id, first, "u1", True),
            Assignment.of_segment(workspace_id, first, "u2", True),
            Assignment.of_segment(workspace_id, second, "u1", True),
            Assignment.of_segment(elsewhere, first, "u9", True),
        ],
        at=earlier,
    )
    # u2 left the first segment later; u3 was computed out of it from the start.
    write_assignments(
        event_store,
        [
            Assignment.of_segment(workspace_id, first, "u2", False),
            Assignment.of_segment(workspace_id, first, "u3", False),
        ],
    )

    counts = segments.count_segment_members(event_store, workspace_id, [first, second, never])

    assert counts == {first: 1, second: 1, never: 0}
    assert segments.count_segment_members(event_store, workspace_id, []) == {}


class Recorder:
    """Stands in for the event writer's `write`: keeps what it was given, or fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.rows: list[EventRow] = []
        self.fail = fail

    def __call__(self, rows: Sequence[EventRow]) -> int:
        if self.fail:
            raise RuntimeError("store down")
        self.rows += rows
        return len(rows)


def _manual(sessions: sessionmaker[Session]) -> tuple[str, str]:
    workspace_id = _workspace(sessions)
    return workspace_id, _upsert(sessions, workspace_id, name="Hand-picked", definition=MANUAL)["id"]


def _update(
    sessions: sessionmaker[Session],
    write: Recorder,
    workspace_id: str,
    segment_id: str,
    users: list[str],
    **kw: Any,
) -> Segment:
    with sessions.begin() as session:
        segment = manual_segments.update_manual_segment(session, write, workspace_id, segment_id, users, **kw)
        session.expunge(segment)
        return segment


def test_replace_bumps_the_version_and_writes_one_event_per_user(sessions: sessionmaker[Session]) -> None:
    workspace_id, segment_id = _manual(sessions)
    write = Recorder()
    segment = _update(sessions, write, workspace_id, segment_id, ["u1", "u2", "u1"], now=T0)
    version = int(T0.timestamp())
    assert segment.definition["entryNode"] == {"type": "Manual", "id": "1", "version": version}
    assert segment.definition_updated_at == T0
    assert [row.message_id for row in write.rows] == [
        str(uuid.uuid5(uuid.UUID(workspace_id), f"manual-update-{segment_id}-{version}-{user}"))
        for user in ("u1", "u2")
    ]
    assert json.loads(write.rows[0].message_raw) == {
        "userId": "u1",
        "messageId": write.rows[0].message_id,
        "timestamp": "2026-03-01T12:00:00.000Z",
        "event": "DFManualSegmentUpdate",
        "properties": {"segmentId": segment_id, "version": version, "inSegment": 1},
        "type": "track",
    }


def test_append_keeps_the_version_and_a_second_replace_in_the_same_second_moves_it(
    sessions: sessionmaker[Session],
) -> None:
    workspace_id, segment_id = _manual(sessions)
    first = _update(sessions, Recorder(), workspace_id, segment_id, ["u1"], now=T0)
    appended = _update(sessions, Recorder(), workspace_id, segment_id, ["u2"], now=T0, append=True)
    assert appended.definition == first.definition
    again = _update(
        sessions, Recorder(), workspace_id, segment_id, ["u3"], now=T0 + timedelta(milliseconds=500)
    )
    assert again.definition["entryNode"]["version"] == first.definition["entryNode"]["version"] + 1


def test_clear_is_a_replace_with_nobody(sessions: sessionmaker[Session]) -> None:
    workspace_id, segment_id = _manual(sessions)
    write = Recorder()
    with sessions.begin() as session:
        cleared = manual_segments.clear_manual_segment(session, write, workspace_id, segment_id, now=T0)
        assert cleared.definition["entryNode"]["version"] == int(T0.timestamp())
    assert write.rows == []


def test_a_failed_write_leaves_the_version_alone(sessions: sessionmaker[Session]) -> None:
    workspace_id, segment_id = _manual(sessions)
    with pytest.raises(RuntimeError):
        _update(sessions, Recorder(fail=True), workspace_id, segment_id, ["u1"], now=T0)
    with sessions() as session:
        assert session.get(Segment, segment_id).definition == MANUAL  # type: ignore[union-attr]


def test_manual_updates_need_a_manual_segment_of_the_workspace(sessions: sessionmaker[Session]) -> None:
    workspace_id, segment_id = _manual(sessions)
    computed = _upsert(sessions, workspace_id, definition=TRAIT)
    with pytest.raises(manual_segments.NotManualSegment):
        _update(sessions, Recorder(), workspace_id, computed["id"], ["u1"])
    with pytest.raises(NotFound):
        _update(sessions, Recorder(), _workspace(sessions), segment_id, ["u1"])
    with sessions() as session:
        assert session.get(Workspace, workspace_id) is not None
