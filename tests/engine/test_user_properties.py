"""User properties as resources, on SQLite and Postgres: Dittofeed's upsert semantics, protected names,
typed errors, status and deletion with the computed rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine import user_properties
from engine.assignments import Assignment, write_assignments
from engine.errors import InvalidInput, NotFound
from engine.storage.event_store import EventStore
from engine.storage.resource_models import ComputedPropertyStatus
from engine.user_properties import UserPropertyUpsert
from engine.workspaces import create_workspace

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PLAN = {"type": "Trait", "path": "plan"}
UNIQUE = {
    "type": "UserPropertyAlreadyExists",
    "message": "Names must be unique in workspace. Id's must be globally unique.",
}
PROTECTED = {"type": "ProtectedUserProperty", "message": "User property name is protected"}


def _workspace(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        return create_workspace(session, f"w-{uuid.uuid4()}").id


def _upsert(
    sessions: sessionmaker[Session], workspace_id: str, at: datetime = T0, **fields: Any
) -> dict[str, Any]:
    with sessions.begin() as session:
        upsert = UserPropertyUpsert(**{"name": "plan", **fields})
        prop = user_properties.upsert_user_property(session, workspace_id, upsert, now=at)
        return user_properties.user_property_resource(prop)


def _refusal(sessions: sessionmaker[Session], workspace_id: str, **fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        user_properties.upsert_user_property(session, workspace_id, UserPropertyUpsert(**fields), now=T0)
    return refused.value


def _ids(sessions: sessionmaker[Session], workspace_id: str) -> dict[str, str]:
    with sessions() as session:
        return {p.name: p.id for p in user_properties.list_user_properties(session, workspace_id)}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_create_and_upsert_by_name(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    created = _upsert(sessions, workspace_id, definition=PLAN, example_value='"pro"')
    assert created == {
        "id": created["id"],
        "workspaceId": workspace_id,
        "name": "plan",
        "definition": PLAN,
        "exampleValue": '"pro"',
        "status": "Running",
        "createdAt": _ms(T0),
        "updatedAt": _ms(T0),
        "definitionUpdatedAt": _ms(T0),
    }
    # The same definition again still counts as a new definition: it forces a recompute.
    later = T0 + timedelta(minutes=1)
    again = _upsert(sessions, workspace_id, later, definition=PLAN)
    assert (again["id"], again["definitionUpdatedAt"], again["exampleValue"]) == (
        created["id"],
        _ms(later),
        '"pro"',
    )


def test_upsert_by_id_renames_and_creates_with_the_given_id(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    wanted = str(uuid.uuid4())
    created = _upsert(sessions, workspace_id, id=wanted.upper(), definition=PLAN)
    assert created["id"] == wanted
    renamed = _upsert(
        sessions, workspace_id, id=wanted, name="tier", definition={"type": "Trait", "path": "tier"}
    )
    assert (renamed["id"], renamed["name"], renamed["definition"]["path"]) == (wanted, "tier", "tier")


def test_without_a_definition_only_example_value_and_status_change(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    created = _upsert(sessions, workspace_id, definition=PLAN)
    later = T0 + timedelta(minutes=1)
    updated = _upsert(sessions, workspace_id, later, example_value="1", status=ComputedPropertyStatus.PAUSED)
    assert (updated["exampleValue"], updated["status"]) == ("1", "Paused")
    assert updated["definitionUpdatedAt"] == created["definitionUpdatedAt"]
    # By id, the name is not changed (upstream's update sets only definition and example value).
    by_id = _upsert(sessions, workspace_id, id=created["id"], name="other", example_value="2")
    assert (by_id["name"], by_id["exampleValue"]) == ("plan", "2")
    with pytest.raises(NotFound), sessions.begin() as session:
        upsert = UserPropertyUpsert(name="nothing-here", example_value="1")
        user_properties.upsert_user_property(session, workspace_id, upsert)


def test_typed_errors(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    theirs = _upsert(sessions, _workspace(sessions), definition=PLAN)
    assert _refusal(sessions, workspace_id, name="x", id="nope", definition=PLAN).body == {
        "type": "IdError",
        "message": "Invalid user property id, must be a valid v4 UUID",
    }
    assert _refusal(sessions, workspace_id, name="id", definition=PLAN).body == PROTECTED
    assert _refusal(sessions, workspace_id, name="anonymousId").body == PROTECTED
    protected_id = _ids(sessions, workspace_id)["id"]
    assert (
        _refusal(sessions, workspace_id, name="renamed", id=protected_id, definition=PLAN).body == PROTECTED
    )
    assert _refusal(sessions, workspace_id, name="x", id=theirs["id"], definition=PLAN).body == UNIQUE
    # A new id with a name the workspace already has.
    assert (
        _refusal(sessions, workspace_id, name="email", id=str(uuid.uuid4()), definition=PLAN).body == UNIQUE
    )
    mine = _upsert(sessions, workspace_id, definition=PLAN)
    assert _refusal(sessions, workspace_id, name="email", id=mine["id"], definition=PLAN).body == UNIQUE
    assert _refusal(sessions, workspace_id, name="n\x00", definition=PLAN).field == "body/name"


def test_list_narrows_by_ids_or_names(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    ids = _ids(sessions, workspace_id)
    assert {"id", "anonymousId", "email", "phone"} <= set(ids)
    with sessions() as session:
        picked = user_properties.list_user_properties(
            session, workspace_id, ids=[ids["email"]], names=["phone"]
        )
    assert sorted(p.name for p in picked) == ["email", "phone"]


def test_status(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    ids = _ids(sessions, workspace_id)
    with sessions.begin() as session:
        paused = user_properties.set_user_property_status(
            session, workspace_id, ids["email"], ComputedPropertyStatus.PAUSED
        )
        assert paused.status == ComputedPropertyStatus.PAUSED
    with pytest.raises(user_properties.ProtectedUserProperty), sessions.begin() as session:
        user_properties.set_user_property_status(
            session, workspace_id, ids["id"], ComputedPropertyStatus.PAUSED
        )
    with pytest.raises(user_properties.UserPropertyNotFound) as refused, sessions.begin() as session:
        user_properties.set_user_property_status(
            session, _workspace(sessions), ids["email"], ComputedPropertyStatus.PAUSED
        )
    assert refused.value.body == {"type": "NotFound", "message": "User property not found"}


def test_delete_removes_the_row_and_its_assignments(
    sessions: sessionmaker[Session], event_store: EventStore
) -> None:
    workspace_id = _workspace(sessions)
    ids = _ids(sessions, workspace_id)
    write_assignments(
        event_store,
        [
            Assignment.of_property(workspace_id, ids["email"], "u1", "a@example.com"),
            Assignment.of_property(workspace_id, ids["phone"], "u1", "+1555"),
        ],
    )
    with sessions.begin() as session:
        user_properties.delete_user_property(session, event_store, workspace_id, ids["email"])
    for doomed in (ids["email"], ids["id"], "not-a-uuid"):
        with pytest.raises(NotFound), sessions.begin() as session:
            user_properties.delete_user_property(session, event_store, workspace_id, doomed)
    assert "email" not in _ids(sessions, workspace_id)
    rows = event_store.query(
        "SELECT DISTINCT computed_property_id FROM computed_property_assignments_v2"
        " WHERE workspace_id = {w:String}",
        {"w": workspace_id},
    )
    assert rows == [(ids["phone"],)]
