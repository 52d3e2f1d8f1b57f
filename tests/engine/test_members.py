"""Members: upsert from an OpenID profile, workspaces they may open, switching, and member-role CRUD."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import members
from engine.errors import NotAuthenticated, NotFound, PermissionDenied
from engine.member_roles import MemberRole, current_role, find_member_roles
from engine.storage.models import (
    Role,
    Workspace,
    WorkspaceMember,
    WorkspaceMemberAccount,
    WorkspaceMemberRole,
    WorkspaceType,
)
from engine.workspaces import create_workspace, tombstone_workspace, upsert_child_workspace


def profile(**claims: Any) -> dict[str, Any]:
    return {"sub": "auth0|alice", "email": "alice@acme.test", "email_verified": True, **claims}


def roles_by_name(roles: list[MemberRole]) -> dict[str, tuple[Role, bool]]:
    return {role.workspace_name: (role.role, role.inherited) for role in roles}


def test_a_verified_profile_creates_the_member_and_links_the_account(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        member = members.upsert_member_from_profile(
            session,
            profile(picture="https://img.test/a.png", name="Alice A", nickname="ali"),
            "auth0",
        )
        member_id = member.id
    with sessions() as session:
        stored = session.get(WorkspaceMember, member_id)
        assert stored is not None
        assert (stored.email, stored.email_verified, stored.image, stored.name, stored.nickname) == (
            "alice@acme.test",
            True,
            "https://img.test/a.png",
            "Alice A",
            "ali",
        )
        accounts = session.scalars(select(WorkspaceMemberAccount)).all()
        assert [(a.workspace_member_id, a.provider, a.provider_account_id) for a in accounts] == [
            (member_id, "auth0", "auth0|alice")
        ]


def test_a_second_login_updates_the_same_member_and_keeps_one_account(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first = members.upsert_member_from_profile(session, profile(name="Alice"), "auth0").id
    with sessions.begin() as session:
        again = members.upsert_member_from_profile(
            session, profile(email="Alice@ACME.test", name="Alice B", email_verified="true"), "auth0"
        )
        assert again.id == first
        assert again.name == "Alice B"
    with sessions() as session:
        assert session.scalars(select(WorkspaceMemberAccount.id)).all().__len__() == 1
        assert session.scalars(select(WorkspaceMember.email)).all() == ["alice@acme.test"]


def test_another_provider_identity_with_the_same_email_is_the_same_member(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first = members.upsert_member_from_profile(session, profile(), "auth0").id
        second = members.upsert_member_from_profile(session, profile(sub="google|1"), "google").id
        assert first == second
    with sessions() as session:
        linked = session.execute(
            select(WorkspaceMemberAccount.provider, WorkspaceMemberAccount.provider_account_id)
        ).all()
        assert sorted(linked) == [("auth0", "auth0|alice"), ("google", "google|1")]


@pytest.mark.parametrize("verified", [False, "false", None, "yes", 1])
def test_an_unverified_email_is_refused_and_nothing_is_stored(
    sessions: sessionmaker[Session], verified: Any
) -> None:
    with sessions.begin() as session, pytest.raises(members.EmailNotVerified):
        members.upsert_member_from_profile(session, profile(email_verified=verified), "auth0")
    with sessions() as session:
        assert session.scalars(select(WorkspaceMember)).all() == []


@pytest.mark.parametrize("missing", ["sub", "email"])
def test_a_profile_without_subject_or_email_is_refused(sessions: sessionmaker[Session], missing: str) -> None:
    claims = profile()
    del claims[missing]
    with sessions.begin() as session, pytest.raises(NotAuthenticated, match=missing):
        members.upsert_member_from_profile(session, claims, "auth0")


def test_a_matching_domain_auto_joins_as_admin_and_children_inherit_the_parent_role(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        parent = create_workspace(session, "Acme", workspace_type=WorkspaceType.PARENT, domain="acme.test")
        upsert_child_workspace(session, parent, "Acme Bakery", "bakery")
        gone = upsert_child_workspace(session, parent, "Acme Gone", "gone")
        tombstone_workspace(session, gone)
        create_workspace(session, "Elsewhere", domain="other.test")
        member = members.upsert_member_from_profile(session, profile(), "auth0")
        roles = find_member_roles(session, member)
        assert roles_by_name(roles) == {
            "Acme": (Role.ADMIN, False),
            "Acme Bakery": (Role.ADMIN, True),
        }
        member_id = member.id
    with sessions() as session:
        # The auto-join is stored; the inherited child role is not.
        stored = session.execute(
            select(Workspace.name, WorkspaceMemberRole.role)
            .join(Workspace, Workspace.id == WorkspaceMemberRole.workspace_id)
            .where(WorkspaceMemberRole.workspace_member_id == member_id)
        ).all()
        assert stored == [("Acme", Role.ADMIN)]


def test_an_explicit_child_role_wins_over_the_inherited_one(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        parent = create_workspace(session, "Acme", workspace_type=WorkspaceType.PARENT)
        child = upsert_child_workspace(session, parent, "Acme Bakery", "bakery")
        members.create_member_role(session, parent.id, "bob@corp.test", Role.AUTHOR)
        members.create_member_role(session, child.id, "bob@corp.test", Role.VIEWER)
        bob = members.upsert_member_from_profile(session, profile(sub="b", email="bob@corp.test"), "oidc")
        assert roles_by_name(find_member_roles(session, bob)) == {
            "Acme": (Role.AUTHOR, False),
            "Acme Bakery": (Role.VIEWER, False),
        }


def test_select_workspace_switches_only_to_a_workspace_the_member_may_open(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        parent = create_workspace(session, "Acme", workspace_type=WorkspaceType.PARENT)
        child = upsert_child_workspace(session, parent, "Acme Bakery", "bakery")
        stranger = create_workspace(session, "Stranger")
        members.create_member_role(session, parent.id, "alice@acme.test", Role.ADMIN)
        alice = members.upsert_member_from_profile(session, profile(), "auth0")
        assert current_role(alice, find_member_roles(session, alice)).workspace_id == parent.id  # type: ignore[union-attr]

        selected = members.select_workspace(session, alice, child.id)
        assert (selected.workspace_id, selected.role, selected.inherited) == (child.id, Role.ADMIN, True)
        with pytest.raises(PermissionDenied):
            members.select_workspace(session, alice, stranger.id)
        alice_id, child_id = alice.id, child.id
    with sessions() as session:
        stored = session.get(WorkspaceMember, alice_id)
        assert stored is not None and stored.last_workspace_id == child_id
        assert current_role(stored, find_member_roles(session, stored)).workspace_id == child_id  # type: ignore[union-attr]


def test_member_roles_can_be_created_listed_updated_and_deleted(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        workspace = create_workspace(session, "Acme")
        other = create_workspace(session, "Other")
        created = members.create_member_role(session, workspace.id, " Carol@Acme.test ", Role.VIEWER)
        members.create_member_role(session, other.id, "dave@acme.test", Role.ADMIN)
        assert created.to_json() == {
            "role": "Viewer",
            "workspaceMemberId": created.workspace_member_id,
            "workspaceId": workspace.id,
            "workspaceName": "Acme",
        }
        workspace_id = workspace.id
    with sessions.begin() as session:
        listed = [entry.to_json() for entry in members.list_member_roles(session, workspace_id)]
        assert len(listed) == 1
        assert listed[0]["member"]["email"] == "carol@acme.test"
        assert listed[0]["member"]["emailVerified"] is False
        assert listed[0]["member"]["createdAt"].endswith("Z")
        assert [role["role"] for role in listed[0]["roles"]] == ["Viewer"]

        updated = members.update_member_role(session, workspace_id, "carol@acme.test", Role.AUTHOR)
        assert updated.role == Role.AUTHOR
    with sessions.begin() as session:
        members.delete_member_role(session, workspace_id, "CAROL@acme.test")
        assert members.list_member_roles(session, workspace_id) == []
        # The member record stays; only the role went.
        assert session.scalar(select(WorkspaceMember.id).where(WorkspaceMember.email == "carol@acme.test"))


def test_a_second_role_in_the_same_workspace_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        workspace = create_workspace(session, "Acme")
        members.create_member_role(session, workspace.id, "carol@acme.test", Role.VIEWER)
        with pytest.raises(members.RoleAlreadyExists):
            members.create_member_role(session, workspace.id, "carol@acme.test", Role.ADMIN)
        # The refused insert left the transaction usable and the first role untouched.
        [entry] = members.list_member_roles(session, workspace.id)
        assert [role.role for role in entry.roles] == [Role.VIEWER]


def test_unknown_workspace_member_or_role_is_not_found(sessions: sessionmaker[Session]) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with sessions.begin() as session:
        workspace = create_workspace(session, "Acme")
        other = create_workspace(session, "Other")
        members.create_member_role(session, other.id, "erin@acme.test", Role.ADMIN)
        with pytest.raises(NotFound):
            members.create_member_role(session, missing, "x@acme.test", Role.VIEWER)
        with pytest.raises(NotFound):
            members.update_member_role(session, workspace.id, "nobody@acme.test", Role.VIEWER)
        # Erin exists but holds no role in this workspace: neither touchable nor listed here.
        with pytest.raises(NotFound):
            members.update_member_role(session, workspace.id, "erin@acme.test", Role.VIEWER)
        with pytest.raises(NotFound):
            members.delete_member_role(session, workspace.id, "erin@acme.test")
        with pytest.raises(NotFound):
            members.list_member_roles(session, missing)
        assert members.list_member_roles(session, workspace.id) == []
