"""Operator actions the CLI performs without the dashboard: create a workspace with its first admin
API key, and seed the demo data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine import workspaces
from engine.credentials import create_admin_api_key
from engine.event_writer import EventWriter
from engine.events import EventRow, build_rows
from engine.storage import make_engine, make_session_factory, upgrade_database
from engine.storage.models import AdminApiKey, Workspace, WorkspaceType
from gateway.app import open_event_store
from gateway.sample_parent import SampleParent
from gateway.settings import Settings


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace_id: str
    admin_api_key: str
    write_key: str | None


def create_workspace_with_key(session: Session, name: str, workspace_type: WorkspaceType) -> CreatedWorkspace:
    workspace = workspaces.create_workspace(session, name, workspace_type=workspace_type)
    key = create_admin_api_key(session, workspace.id, "operator")
    write_key = workspaces.describe_workspace(session, workspace).write_key
    # A parent cannot receive events, so its write key is not worth printing.
    return CreatedWorkspace(
        workspace.id, key.api_key, None if workspace_type == WorkspaceType.PARENT else write_key
    )


def run_create_workspace(settings: Settings, name: str, workspace_type: WorkspaceType) -> CreatedWorkspace:
    sql_engine = make_engine(settings.database_url)
    upgrade_database(sql_engine)
    try:
        with make_session_factory(sql_engine).begin() as session:
            return create_workspace_with_key(session, name, workspace_type)
    finally:
        sql_engine.dispose()


def seed_demo(settings: Settings) -> CreatedWorkspace | None:
    """On an empty install, create a parent with one child and a week of sample events in it."""
    sql_engine = make_engine(settings.database_url)
    upgrade_database(sql_engine)
    sessions = make_session_factory(sql_engine)
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(Workspace)):
            sql_engine.dispose()
            return None
        created = create_workspace_with_key(session, "Demo SaaS", WorkspaceType.PARENT)
        parent = session.get(Workspace, created.workspace_id)
        assert parent is not None
        child = workspaces.upsert_child_workspace(session, parent, "Acme Bakery", "acme-bakery")
    sql_engine.dispose()
    store = open_event_store(settings)
    writer = EventWriter(store)
    try:
        writer.write(_sample_events(child.id))
    finally:
        writer.close()
        store.close()
    return created


def _sample_events(workspace_id: str) -> list[EventRow]:
    now = datetime.now(UTC)
    rows: list[EventRow] = []
    for n in range(50):
        user = f"user-{n}"
        at = now - timedelta(hours=n * 3)
        stamp = at.isoformat().replace("+00:00", "Z")
        identify = {
            "messageId": f"seed-identify-{n}",
            "userId": user,
            "timestamp": stamp,
            "traits": {
                "email": f"{user}@example.com",
                "firstName": f"User {n}",
                "plan": ["free", "pro"][n % 2],
            },
        }
        rows += build_rows(workspace_id, "identify", identify, at)
        for k in range(n % 4):
            track = {
                "messageId": f"seed-track-{n}-{k}",
                "userId": user,
                "timestamp": stamp,
                "event": "ORDER_PLACED",
                "properties": {"total": 10 + k},
            }
            rows += build_rows(workspace_id, "track", track, at)
    return rows


SAMPLE_PARENT_KEY_NAME = "sample-parent-page"


def prepare_sample_parent(settings: Settings) -> SampleParent | None:
    """The demo parent and its first child, with a fresh admin key for the sample parent page (the
    key is kept in memory only; the previous run's is deleted). None when the demo was not seeded."""
    sql_engine = make_engine(settings.database_url)
    try:
        sessions = make_session_factory(sql_engine)
        with sessions.begin() as session:
            parent = session.scalar(
                select(Workspace).where(Workspace.name == "Demo SaaS", Workspace.type == WorkspaceType.PARENT)
            )
            child = parent and session.scalar(
                select(Workspace)
                .where(Workspace.parent_workspace_id == parent.id)
                .order_by(Workspace.created_at)
            )
            if parent is None or child is None:
                return None
            session.execute(
                delete(AdminApiKey).where(
                    AdminApiKey.workspace_id == parent.id, AdminApiKey.name == SAMPLE_PARENT_KEY_NAME
                )
            )
            key = create_admin_api_key(session, parent.id, SAMPLE_PARENT_KEY_NAME)
            return SampleParent(parent_id=parent.id, child_id=child.id, admin_key=key.api_key)
    finally:
        sql_engine.dispose()
