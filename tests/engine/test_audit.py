"""The audit log: a session carrying an actor records every row it changes, in its own transaction,
with the row before and after and nothing secret; a parent reads its own and its children's entries,
newest first, a page at a time, and never another parent's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import (
    REDACTED,
    Actor,
    AuditContext,
    attach_audit,
    count_recorded,
    list_audit_entries,
    record_action,
)
from engine.errors import InvalidInput
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.gateway_models import AuditEntry
from engine.storage.models import AdminApiKey, Secret, Workspace, WorkspaceType, utcnow
from engine.storage.resource_models import MessageTemplate, Segment, SegmentIOConfiguration

TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
KEY = Actor("AdminApiKey", "key-1")


def _context(actor: Actor | None = KEY, action: str = "admin:segments:upsert") -> AuditContext:
    return AuditContext(action=action, ip="203.0.113.7", actor=actor)


def _workspace(sessions: sessionmaker[Session], name: str, parent_id: str | None = None) -> str:
    kind = WorkspaceType.CHILD if parent_id else WorkspaceType.PARENT
    with sessions.begin() as session:
        workspace = Workspace(name=name, type=kind, parent_workspace_id=parent_id)
        session.add(workspace)
        session.flush()
        return workspace.id


@pytest.fixture
def parent_id(sessions: sessionmaker[Session]) -> str:
    return _workspace(sessions, "Parent")


@pytest.fixture
def child_id(sessions: sessionmaker[Session], parent_id: str) -> str:
    return _workspace(sessions, "Child", parent_id)


def _all_entries(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _add_segment(sessions: sessionmaker[Session], workspace_id: str, name: str, **context: Any) -> str:
    with sessions.begin() as session:
        attach_audit(session, _context(**context))
        segment = Segment(workspace_id=workspace_id, name=name, definition=TRAIT)
        session.add(segment)
        session.flush()
        return segment.id


def test_an_actors_insert_update_and_delete_are_recorded_with_before_and_after(
    sessions: sessionmaker[Session], parent_id: str, child_id: str
) -> None:
    segment_id = _add_segment(sessions, child_id, "Paid")
    with sessions.begin() as session:
        attach_audit(session, _context(action="admin:segments:upsert"))
        segment = session.get(Segment, segment_id)
        assert segment is not None
        segment.name = "Paid users"
    with sessions.begin() as session:
        attach_audit(session, _context(action="admin:segments:delete"))
        session.delete(session.get(Segment, segment_id))

    created, updated, deleted = _all_entries(sessions)
    for entry in (created, updated, deleted):
        assert (entry.workspace_id, entry.parent_workspace_id) == (child_id, parent_id)
        assert (entry.actor_type, entry.actor_id, entry.ip) == ("AdminApiKey", "key-1", "203.0.113.7")
        assert (entry.resource_type, entry.resource_id) == ("Segment", segment_id)
    assert created.action == "admin:segments:upsert" and created.before is None
    assert created.after is not None
    assert created.after["name"] == "Paid" and created.after["definition"] == TRAIT
    assert created.after["status"] == "Running" and created.after["workspace_id"] == child_id
    assert isinstance(created.after["created_at"], str)  # datetimes as ISO 8601
    # An update keeps only what changed.
    assert (updated.before, updated.after) == ({"name": "Paid"}, {"name": "Paid users"})
    assert deleted.action == "admin:segments:delete" and deleted.after is None
    assert deleted.before is not None and deleted.before["name"] == "Paid users"


def test_a_rolled_back_change_leaves_no_entry(sessions: sessionmaker[Session], child_id: str) -> None:
    with sessions() as session:
        session.begin()
        attach_audit(session, _context())
        session.add(Segment(workspace_id=child_id, name="Paid", definition=TRAIT))
        session.flush()
        assert count_recorded(session) == 1
        session.rollback()
    with pytest.raises(RuntimeError), sessions.begin() as session:
        attach_audit(session, _context())
        session.add(Segment(workspace_id=child_id, name="Paid", definition=TRAIT))
        session.flush()
        raise RuntimeError("the handler failed after the flush")
    assert _all_entries(sessions) == []
    with sessions() as session:
        assert session.scalars(select(Segment).where(Segment.workspace_id == child_id)).all() == []


def test_sessions_without_an_actor_record_nothing(sessions: sessionmaker[Session], child_id: str) -> None:
    _add_segment(sessions, child_id, "Anonymous request", actor=None)
    with sessions.begin() as session:  # a worker's session: no context at all
        session.add(Segment(workspace_id=child_id, name="Worker", definition=TRAIT))
    with sessions.begin() as session:
        assert not record_action(
            session, _context(actor=None), workspace_id=child_id, resource_type="User", resource_id="u1"
        )
    assert _all_entries(sessions) == []


def test_an_unchanged_row_and_the_derived_tables_are_not_recorded(
    sessions: sessionmaker[Session], child_id: str
) -> None:
    segment_id = _add_segment(sessions, child_id, "Paid")
    with sessions.begin() as session:
        attach_audit(session, _context())
        segment = session.get(Segment, segment_id)
        assert segment is not None
        segment.name = "Paid"  # the same value: nothing changed
        # A copy rebuilt from ClickHouse is not authored state.
        session.add(
            SegmentAssignment(
                workspace_id=child_id,
                segment_id=segment_id,
                user_id="u1",
                in_segment=True,
                assigned_at=utcnow(),
            )
        )
    assert len(_all_entries(sessions)) == 1


def test_a_workspace_row_is_logged_under_itself_for_its_parent(
    sessions: sessionmaker[Session], parent_id: str
) -> None:
    with sessions.begin() as session:
        attach_audit(session, _context(action="workspaces:put_child"))
        child = Workspace(name="New child", type=WorkspaceType.CHILD, parent_workspace_id=parent_id)
        session.add(child)
        session.flush()
        child_id = child.id
    (entry,) = _all_entries(sessions)
    assert (entry.workspace_id, entry.parent_workspace_id) == (child_id, parent_id)
    assert (entry.resource_type, entry.resource_id) == ("Workspace", child_id)
    assert entry.after is not None and entry.after["type"] == "Child"  # enums as their values


def test_secrets_never_reach_the_log(sessions: sessionmaker[Session], child_id: str) -> None:
    secrets = ["w-r-i-t-e-k-e-y", "sg-api-key-123", "0123abcd" * 8, "hmac-shared-secret", "pw-hunter2"]
    with sessions.begin() as session:
        attach_audit(session, _context())
        session.add(Secret(workspace_id=child_id, name="default-write-key", value=secrets[0]))
        session.add(
            Secret(
                workspace_id=child_id,
                name="sendgrid",
                config_value={"type": "SendGrid", "apiKey": secrets[1]},
            )
        )
        session.add(AdminApiKey(workspace_id=child_id, name="ops", key_hash=secrets[2]))
        session.add(SegmentIOConfiguration(workspace_id=child_id, shared_secret=secrets[3]))
        session.add(
            MessageTemplate(
                workspace_id=child_id,
                name="Hook",
                definition={"type": "Webhook", "config": {"headers": {"password": secrets[4]}}},
            )
        )
        record_action(
            session,
            _context(action="sessions:mint"),
            workspace_id=child_id,
            resource_type="EmbedSession",
            resource_id="occupant-1",
            after={"occupantId": "occupant-1", "token": "signed-token-value"},
        )
    with sessions.begin() as session:
        attach_audit(session, _context())
        secret = session.scalars(select(Secret).where(Secret.name == "default-write-key")).one()
        secret.value = "rotated-write-key"
        session.execute(delete(SegmentIOConfiguration).where(SegmentIOConfiguration.workspace_id == child_id))

    entries = _all_entries(sessions)
    logged = json.dumps([[entry.before, entry.after] for entry in entries])
    for secret_value in [*secrets, "rotated-write-key", "signed-token-value"]:
        assert secret_value not in logged
    by_type = {(entry.resource_type, entry.before is None): entry for entry in entries}
    write_key = by_type["Secret", False]
    assert (write_key.before, write_key.after) == ({"value": REDACTED}, {"value": REDACTED})
    assert by_type["Secret", True].after["name"] in {"default-write-key", "sendgrid"}  # type: ignore[index]
    assert by_type["AdminApiKey", True].after["key_hash"] == REDACTED  # type: ignore[index]
    assert by_type["AdminApiKey", True].after["name"] == "ops"  # type: ignore[index]
    hook = by_type["MessageTemplate", True].after
    assert hook is not None and hook["definition"]["config"]["headers"] == {"password": REDACTED}
    removed = by_type["SegmentIOConfiguration", False]
    assert removed.after is None and removed.before is not None
    assert removed.before["shared_secret"] == REDACTED
    mint = by_type["EmbedSession", True]
    assert (mint.action, mint.after) == ("sessions:mint", {"occupantId": "occupant-1", "token": REDACTED})


def test_bulk_update_and_delete_statements_are_recorded_per_row(
    sessions: sessionmaker[Session], child_id: str
) -> None:
    first = _add_segment(sessions, child_id, "One")
    second = _add_segment(sessions, child_id, "Two")
    with sessions.begin() as session:
        attach_audit(session, _context(action="admin:segments:rename"))
        session.execute(update(Segment).where(Segment.id == first).values(name="Uno"))
        session.execute(delete(Segment).where(Segment.id == second))
    renamed, removed = _all_entries(sessions)[2:]
    assert (renamed.resource_id, renamed.before, renamed.after) == (first, {"name": "One"}, {"name": "Uno"})
    assert (removed.resource_id, removed.after) == (second, None)
    assert removed.before is not None and removed.before["name"] == "Two"
    assert removed.workspace_id == child_id and removed.action == "admin:segments:rename"


def test_one_flush_writes_its_entries_in_one_insert(
    sessions: sessionmaker[Session], sql_engine: Engine, child_id: str
) -> None:
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_ENTRIES"):
            inserts.append(statement)

    event.listen(sql_engine, "before_cursor_execute", count)
    try:
        with sessions.begin() as session:
            attach_audit(session, _context())
            for name in ("A", "B", "C"):
                session.add(Segment(workspace_id=child_id, name=name, definition=TRAIT))
    finally:
        event.remove(sql_engine, "before_cursor_execute", count)
    assert len(_all_entries(sessions)) == 3
    assert len(inserts) == 1


@pytest.fixture
def two_families(sessions: sessionmaker[Session]) -> Iterator[dict[str, str]]:
    ids = {"a": _workspace(sessions, "Parent A"), "b": _workspace(sessions, "Parent B")}
    ids["a1"] = _workspace(sessions, "A1", ids["a"])
    ids["a2"] = _workspace(sessions, "A2", ids["a"])
    ids["b1"] = _workspace(sessions, "B1", ids["b"])
    for name, workspace_id in ids.items():
        _add_segment(sessions, workspace_id, f"segment of {name}")
    yield ids


def _resources(page_entries: list[AuditEntry]) -> list[str]:
    return [entry.workspace_id for entry in page_entries]


def test_a_viewer_reads_its_own_and_its_childrens_entries_only(
    sessions: sessionmaker[Session], two_families: dict[str, str]
) -> None:
    ids = two_families
    with sessions() as session:
        seen_by_a = list_audit_entries(session, ids["a"]).entries
        assert _resources(seen_by_a) == [ids["a2"], ids["a1"], ids["a"]]  # newest first
        assert _resources(list_audit_entries(session, ids["b"]).entries) == [ids["b1"], ids["b"]]
        # A child sees its own entries, never its parent's or a sibling's.
        assert _resources(list_audit_entries(session, ids["a1"]).entries) == [ids["a1"]]
        # Naming a workspace narrows within the viewer's scope and never widens it.
        assert _resources(list_audit_entries(session, ids["a"], workspace_id=ids["a1"]).entries) == [
            ids["a1"]
        ]
        assert _resources(list_audit_entries(session, ids["a"], workspace_id=ids["a"]).entries) == [ids["a"]]
        assert list_audit_entries(session, ids["a"], workspace_id=ids["b1"]).entries == []
        assert list_audit_entries(session, ids["a1"], workspace_id=ids["a"]).entries == []
        assert list_audit_entries(session, ids["a"], workspace_id=ids["b"]).entries == []


def test_filters(sessions: sessionmaker[Session], parent_id: str, child_id: str) -> None:
    member = Actor("Member", "member-1")
    segment_id = _add_segment(sessions, child_id, "By key", action="admin:segments:upsert")
    _add_segment(sessions, child_id, "By member", actor=member, action="segments:upsert")
    with sessions.begin() as session:
        assert record_action(
            session,
            _context(actor=member, action="users:delete"),
            workspace_id=child_id,
            resource_type="User",
            resource_id="user-9",
        )
    with sessions() as session:

        def names(**filters: Any) -> list[str | None]:
            entries = list_audit_entries(session, parent_id, **filters).entries
            return [entry.after["name"] if entry.after else entry.resource_id for entry in entries]

        assert names(actor_type="Member") == ["user-9", "By member"]
        assert names(actor_type="AdminApiKey", actor_id="key-1") == ["By key"]
        assert names(actor_id="member-1", action="segments:upsert") == ["By member"]
        assert names(resource_type="User") == ["user-9"]
        assert names(resource_type="Segment", resource_id=segment_id) == ["By key"]
        now = utcnow()
        assert len(names(since=now - timedelta(minutes=5), until=now + timedelta(minutes=5))) == 3
        assert names(since=now + timedelta(minutes=5)) == []
        assert names(until=now - timedelta(minutes=5)) == []


def test_cursor_pages_through_every_entry_once(
    sessions: sessionmaker[Session], two_families: dict[str, str]
) -> None:
    ids = two_families
    for index in range(4):
        _add_segment(sessions, ids["a1"], f"extra {index}")
    with sessions() as session:
        every = list_audit_entries(session, ids["a"]).entries
        assert len(every) == 7
        pages: list[list[AuditEntry]] = []
        cursor: str | None = None
        while True:
            page = list_audit_entries(session, ids["a"], cursor=cursor, limit=3)
            pages.append(page.entries)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [entry.id for page in pages for entry in page] == [entry.id for entry in every]


def test_a_last_full_page_has_no_next_cursor(sessions: sessionmaker[Session], child_id: str) -> None:
    _add_segment(sessions, child_id, "One")
    _add_segment(sessions, child_id, "Two")
    with sessions() as session:
        assert list_audit_entries(session, child_id, limit=2).next_cursor is None
        assert list_audit_entries(session, child_id, limit=1).next_cursor is not None


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ],
)
def test_bad_paging_is_refused_naming_the_field(
    sessions: sessionmaker[Session], child_id: str, arguments: dict[str, Any], field: str
) -> None:
    with sessions() as session, pytest.raises(InvalidInput) as raised:
        list_audit_entries(session, child_id, **arguments)
    assert raised.value.field == field
