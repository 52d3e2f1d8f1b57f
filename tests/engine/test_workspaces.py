"""Workspaces: bootstrap, child upsert rules, tombstoning."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import workspaces
from engine.credentials import authenticate_write_key
from engine.errors import InvalidInput, NotAuthenticated
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType
from engine.storage.resource_models import (
    DefaultEmailProvider,
    EmailProvider,
    ResourceType,
    Segment,
    SubscriptionGroup,
    UserProperty,
)


def test_bootstrap_creates_dittofeeds_defaults(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        workspace = workspaces.create_workspace(session, "Acme")
        resource = workspaces.describe_workspace(session, workspace)
    with sessions() as session:
        names = set(
            session.scalars(select(UserProperty.name).where(UserProperty.workspace_id == workspace.id))
        )
        groups = session.scalars(
            select(SubscriptionGroup).where(SubscriptionGroup.workspace_id == workspace.id)
        )
        default_email = session.scalars(
            select(EmailProvider.type)
            .join(DefaultEmailProvider)
            .where(EmailProvider.workspace_id == workspace.id)
        ).one()
        internal_segments = session.scalars(
            select(Segment.name).where(Segment.resource_type == ResourceType.INTERNAL)
        ).all()
        assert {"id", "anonymousId", "email", "phone", "timezone"} <= names
        assert {(g.name, g.type.value, g.id) for g in groups} == {
            ("Acme - Email", "OptOut", str(uuid.uuid5(uuid.UUID(workspace.id), "email-subscription-group"))),
            ("Acme - SMS", "OptOut", str(uuid.uuid5(uuid.UUID(workspace.id), "sms-subscription-group"))),
        }
        assert default_email == "Test"
        assert len(internal_segments) == 4
        assert resource.write_key is not None
        assert authenticate_write_key(session, resource.write_key) == workspace.id


def test_child_upsert_is_idempotent_by_external_id(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        parent = workspaces.create_workspace(session, "P", workspace_type=WorkspaceType.PARENT)
        first = workspaces.upsert_child_workspace(session, parent, "Tenant", "t-1")
        again = workspaces.upsert_child_workspace(session, parent, "Tenant", "t-1")
        assert first.id == again.id
        with pytest.raises(workspaces.WorkspaceAlreadyExists):
            workspaces.upsert_child_workspace(session, parent, "Renamed", "t-1")
        with pytest.raises(workspaces.WorkspaceAlreadyExists):
            workspaces.upsert_child_workspace(session, parent, "Tenant", "t-2")


def test_children_need_an_active_parent_of_type_parent(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        root = workspaces.create_workspace(session, "Root")
        with pytest.raises(InvalidInput, match="type Parent"):
            workspaces.upsert_child_workspace(session, root, "Tenant", "t-1")


@pytest.mark.parametrize("domain", ["gmail.com", "not a domain", "-acme.com", "acme", "mail.acme.com"])
def test_public_or_malformed_domains_are_refused(sessions: sessionmaker[Session], domain: str) -> None:
    with sessions.begin() as session, pytest.raises(workspaces.InvalidDomain):
        workspaces.create_workspace(session, "W", domain=domain)


def test_names_may_not_impersonate_tombstones(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(workspaces.WorkspaceNameViolation):
        workspaces.create_workspace(session, "DfTombstoned-x")


def test_tombstone_frees_name_and_external_id_and_kills_the_write_key(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        parent = workspaces.create_workspace(session, "P", workspace_type=WorkspaceType.PARENT)
        child = workspaces.upsert_child_workspace(session, parent, "Tenant", "t-1")
        write_key = workspaces.describe_workspace(session, child).write_key
        workspaces.tombstone_workspace(session, child)
        workspaces.tombstone_workspace(session, child)  # idempotent
        assert (child.name, child.external_id, child.status) == (
            "DfTombstoned-Tenant",
            "DfTombstoned-t-1",
            WorkspaceStatus.TOMBSTONED,
        )
        replacement = workspaces.upsert_child_workspace(session, parent, "Tenant", "t-1")
        assert replacement.id != child.id
        assert write_key is not None
        with pytest.raises(NotAuthenticated):
            authenticate_write_key(session, write_key)
    with sessions() as session:
        assert (
            session.scalar(select(Workspace.status).where(Workspace.id == child.id))
            == WorkspaceStatus.TOMBSTONED
        )
