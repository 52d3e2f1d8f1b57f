"""The SQL schema: migrations match the models and enforce Dittofeed's uniqueness rules on SQLite and
Postgres alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.storage.db import make_read_session_factory
from engine.storage.migrate import is_up_to_date, upgrade_database
from engine.storage.models import Base, Secret, Workspace, WorkspaceStatus, WorkspaceType


# Neither dialect reflects the expression index on (coalesce(parent), name); its behaviour is tested below.
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
def test_migrations_reach_head_and_match_the_models(sql_engine: Engine) -> None:
    assert is_up_to_date(sql_engine)
    with sql_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent(sql_engine: Engine) -> None:
    upgrade_database(sql_engine)
    assert is_up_to_date(sql_engine)


def _add(sessions: sessionmaker[Session], *rows: object) -> None:
    with sessions.begin() as session:
        session.add_all(rows)


def test_root_workspace_names_are_globally_unique(sessions: sessionmaker[Session]) -> None:
    _add(sessions, Workspace(name="acme"))
    with pytest.raises(IntegrityError):
        _add(sessions, Workspace(name="acme"))


def test_child_names_are_unique_per_parent_only(sessions: sessionmaker[Session]) -> None:
    parent_a = Workspace(name="parent-a", type=WorkspaceType.PARENT)
    parent_b = Workspace(name="parent-b", type=WorkspaceType.PARENT)
    _add(sessions, parent_a, parent_b)
    _add(sessions, Workspace(name="tenant", type=WorkspaceType.CHILD, parent_workspace_id=parent_a.id))
    _add(sessions, Workspace(name="tenant", type=WorkspaceType.CHILD, parent_workspace_id=parent_b.id))
    _add(sessions, Workspace(name="tenant"))  # a root may share a child's name
    with pytest.raises(IntegrityError):
        _add(sessions, Workspace(name="tenant", type=WorkspaceType.CHILD, parent_workspace_id=parent_a.id))


def test_external_ids_are_unique_per_parent(sessions: sessionmaker[Session]) -> None:
    parent = Workspace(name="parent", type=WorkspaceType.PARENT)
    _add(sessions, parent)
    _add(sessions, Workspace(name="c1", parent_workspace_id=parent.id, external_id="ext-1"))
    # Roots have no parent, so NULL semantics leave their externalIds unconstrained, as upstream.
    _add(sessions, Workspace(name="r1", external_id="ext-1"), Workspace(name="r2", external_id="ext-1"))
    with pytest.raises(IntegrityError):
        _add(sessions, Workspace(name="c2", parent_workspace_id=parent.id, external_id="ext-1"))


def test_defaults_and_utc_timestamps_round_trip(sessions: sessionmaker[Session]) -> None:
    before = datetime.now(UTC)
    _add(sessions, Workspace(name="w"))
    with sessions() as session:
        workspace = session.scalars(select(Workspace)).one()
    assert (workspace.type, workspace.status) == (WorkspaceType.ROOT, WorkspaceStatus.ACTIVE)
    assert workspace.created_at.tzinfo is not None
    assert before <= workspace.created_at <= datetime.now(UTC)


def test_secrets_go_with_their_workspace(sessions: sessionmaker[Session]) -> None:
    workspace = Workspace(name="w")
    _add(sessions, workspace)
    _add(
        sessions,
        Secret(workspace_id=workspace.id, name="subscription-key", value="abc", config_value={"a": [1]}),
    )
    with sessions() as session:
        assert session.scalars(select(Secret.config_value)).one() == {"a": [1]}
    with sessions.begin() as session:
        session.delete(session.get(Workspace, workspace.id))
    with sessions() as session:
        assert session.scalars(select(Secret)).all() == []


def test_a_read_only_session_reads_beside_an_open_write_transaction(
    sql_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _add(sessions, Workspace(name="committed"))
    reads = make_read_session_factory(sql_engine)

    with sessions.begin() as writer:
        writer.add(Workspace(name="uncommitted"))
        writer.flush()  # the writer now holds SQLite's one write lock (Postgres: its row locks)
        # A read-only session neither waits for the writer (SQLite would wait 30 s, then fail) nor sees
        # its uncommitted row.
        with reads() as reader:
            names = set(reader.scalars(select(Workspace.name)))

    assert names == {"committed"}
