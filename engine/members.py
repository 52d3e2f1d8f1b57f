"""Dashboard members: who they are (upserted from a verified OpenID profile), which workspace they work
in, and the member-role records an Admin manages through `/api/permissions` (Dittofeed §1.5).

Members are keyed by email, as upstream does: a profile whose `email_verified` is not true is refused,
because an unverified address could claim someone else's member. Emails are compared lower-cased
(stored lower-cased) so an address typed into the permissions API matches the provider's spelling.
Role lookups that decide access live in `engine.member_roles`; this module only writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from engine.member_roles import MemberRole, find_member_roles
from engine.resources import iso_ms
from engine.storage.models import (
    Role,
    Workspace,
    WorkspaceMember,
    WorkspaceMemberAccount,
    WorkspaceMemberRole,
)


class EmailNotVerified(NotAuthenticated):
    """The provider does not vouch for the profile's email address."""

    def __init__(self) -> None:
        super().__init__("Your email address is not verified by the identity provider.")


class RoleAlreadyExists(InvalidInput):
    """`POST /api/permissions` for a member who already holds a role there (upstream answers 400)."""

    def __init__(self) -> None:
        super().__init__("Member already has a role in this workspace.", field="email")


@dataclass(frozen=True)
class MemberRoleResource:
    """Dittofeed's `WorkspaceMemberRoleResource`."""

    role: Role
    workspace_member_id: str
    workspace_id: str
    workspace_name: str

    def to_json(self) -> dict[str, str]:
        return {
            "role": self.role.value,
            "workspaceMemberId": self.workspace_member_id,
            "workspaceId": self.workspace_id,
            "workspaceName": self.workspace_name,
        }


@dataclass(frozen=True)
class MemberWithRoles:
    """One entry of `GET /api/permissions`: a member and their roles in the workspace asked about."""

    member: WorkspaceMember
    roles: list[MemberRoleResource]

    def to_json(self) -> dict[str, Any]:
        return {"member": member_json(self.member), "roles": [role.to_json() for role in self.roles]}


def member_json(member: WorkspaceMember) -> dict[str, Any]:
    """Dittofeed's `WorkspaceMemberResource` (optional fields left out when unset)."""
    body: dict[str, Any] = {
        "id": member.id,
        "email": member.email,
        "emailVerified": member.email_verified,
        "createdAt": iso_ms(member.created_at),
    }
    for key, value in (("picture", member.image), ("name", member.name), ("nickname", member.nickname)):
        if value is not None:
            body[key] = value
    return body


def normalize_email(email: str) -> str:
    return email.strip().lower()


def upsert_member_from_profile(
    session: Session, profile: Mapping[str, Any], provider: str
) -> WorkspaceMember:
    """Create or update the member a verified OpenID profile names, and link the provider account.

    :raises EmailNotVerified: `email_verified` is neither true nor "true".
    :raises NotAuthenticated: the profile has no `sub` or no `email`.
    """
    sub = profile.get("sub")
    email = profile.get("email")
    if not isinstance(sub, str) or not sub:
        raise NotAuthenticated("The identity provider's profile has no subject (sub).")
    if not isinstance(email, str) or not email.strip():
        raise NotAuthenticated("The identity provider's profile has no email address.")
    verified = profile.get("email_verified")
    # Exactly true or "true" (1 == True in Python, but 1 is not a JSON true).
    if not (verified is True or verified == "true"):
        raise EmailNotVerified()
    member = _find_or_create_member(session, normalize_email(email))
    member.email_verified = True
    for attribute, claim in (("image", "picture"), ("name", "name"), ("nickname", "nickname")):
        value = profile.get(claim)
        if isinstance(value, str) and value:
            setattr(member, attribute, value)
    session.flush()
    _link_account(session, member, provider, sub)
    return member


def select_workspace(session: Session, member: WorkspaceMember, workspace_id: str) -> MemberRole:
    """Make `workspace_id` the member's current workspace.

    :raises PermissionDenied: the member holds no role there (explicit, auto-joined or inherited).
    """
    for role in find_member_roles(session, member):
        if role.workspace_id == workspace_id:
            member.last_workspace_id = workspace_id
            session.flush()
            return role
    raise PermissionDenied("You are not a member of that workspace.")


def list_member_roles(session: Session, workspace_id: str) -> list[MemberWithRoles]:
    """Every member holding an explicit role in the workspace, oldest role first.

    :raises NotFound: no such workspace.
    """
    workspace = _get_workspace(session, workspace_id)
    rows = session.execute(
        select(WorkspaceMemberRole, WorkspaceMember)
        .join(WorkspaceMember, WorkspaceMember.id == WorkspaceMemberRole.workspace_member_id)
        .where(WorkspaceMemberRole.workspace_id == workspace.id)
        .order_by(WorkspaceMemberRole.created_at, WorkspaceMember.email)
    ).all()
    return [MemberWithRoles(member, [_resource(row, workspace)]) for row, member in rows]


def create_member_role(session: Session, workspace_id: str, email: str, role: Role) -> MemberRoleResource:
    """Give the member with `email` a role in the workspace, creating the member if unknown (they
    become able to log in once their provider vouches for the address).

    :raises NotFound: no such workspace.
    :raises RoleAlreadyExists: the member already holds a role there.
    """
    workspace = _get_workspace(session, workspace_id)
    member = _find_or_create_member(session, normalize_email(email))
    if session.get(WorkspaceMemberRole, (workspace.id, member.id)) is not None:
        raise RoleAlreadyExists()
    row = WorkspaceMemberRole(workspace_id=workspace.id, workspace_member_id=member.id, role=role)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise RoleAlreadyExists() from None
    return _resource(row, workspace)


def update_member_role(session: Session, workspace_id: str, email: str, role: Role) -> MemberRoleResource:
    """Change the role an existing member holds in the workspace.

    :raises NotFound: no such workspace, member, or role of that member there.
    """
    workspace = _get_workspace(session, workspace_id)
    row = _get_role(session, workspace, email)
    row.role = role
    session.flush()
    return _resource(row, workspace)


def delete_member_role(session: Session, workspace_id: str, email: str) -> None:
    """Remove the member's role in the workspace (the member record stays).

    :raises NotFound: no such workspace, member, or role of that member there.
    """
    workspace = _get_workspace(session, workspace_id)
    session.delete(_get_role(session, workspace, email))
    session.flush()


def _find_or_create_member(session: Session, email: str) -> WorkspaceMember:
    member = session.scalar(select(WorkspaceMember).where(WorkspaceMember.email == email))
    if member is not None:
        return member
    created = WorkspaceMember(email=email, email_verified=False)
    try:
        with session.begin_nested():
            session.add(created)
            session.flush()
    except IntegrityError:
        # A concurrent first login of the same address won the insert; theirs is the member.
        return session.scalars(select(WorkspaceMember).where(WorkspaceMember.email == email)).one()
    return created


def _link_account(session: Session, member: WorkspaceMember, provider: str, sub: str) -> None:
    """Insert (provider, sub) for the member unless that identity is already linked (to anyone, as
    upstream's insert-on-conflict-do-nothing)."""
    linked = session.scalar(
        select(WorkspaceMemberAccount.id).where(
            WorkspaceMemberAccount.provider == provider,
            WorkspaceMemberAccount.provider_account_id == sub,
        )
    )
    if linked is not None:
        return
    try:
        with session.begin_nested():
            session.add(
                WorkspaceMemberAccount(
                    workspace_member_id=member.id, provider=provider, provider_account_id=sub
                )
            )
            session.flush()
    except IntegrityError:
        pass


def _get_workspace(session: Session, workspace_id: str) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("Workspace not found.")
    return workspace


def _get_role(session: Session, workspace: Workspace, email: str) -> WorkspaceMemberRole:
    row = session.scalar(
        select(WorkspaceMemberRole)
        .join(WorkspaceMember, WorkspaceMember.id == WorkspaceMemberRole.workspace_member_id)
        .where(
            WorkspaceMemberRole.workspace_id == workspace.id,
            WorkspaceMember.email == normalize_email(email),
        )
    )
    if row is None:
        raise NotFound("Member role not found.")
    return row


def _resource(row: WorkspaceMemberRole, workspace: Workspace) -> MemberRoleResource:
    return MemberRoleResource(row.role, row.workspace_member_id, workspace.id, workspace.name)
