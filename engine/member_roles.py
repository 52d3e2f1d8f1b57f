"""Which workspaces a dashboard member may open, with which role (Dittofeed's `findAndCreateRoles`).

A member's roles are the explicit ones in Active workspaces, plus an Admin role created on first
sight in every Active workspace whose `domain` is the member's email domain (auto-join), plus, for
every Parent workspace among them, the same role in each of its Active children unless the member
holds an explicit one there (inherited, never stored). Roles rank Admin > WorkspaceManager > Author
> Viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.storage.models import (
    Role,
    Workspace,
    WorkspaceMember,
    WorkspaceMemberRole,
    WorkspaceStatus,
    WorkspaceType,
)

RANK = {Role.ADMIN: 10, Role.WORKSPACE_MANAGER: 20, Role.AUTHOR: 30, Role.VIEWER: 40}


@dataclass(frozen=True)
class MemberRole:
    workspace_id: str
    workspace_name: str
    role: Role
    inherited: bool = False


def role_at_least(role: Role, required: Role) -> bool:
    """True when `role` is `required` or more privileged."""
    return RANK[role] <= RANK[required]


def find_member_roles(session: Session, member: WorkspaceMember) -> list[MemberRole]:
    """Every workspace `member` may open, oldest role first; creates auto-join roles as a side effect."""
    explicit = session.execute(
        select(WorkspaceMemberRole, Workspace)
        .join(Workspace, Workspace.id == WorkspaceMemberRole.workspace_id)
        .where(
            WorkspaceMemberRole.workspace_member_id == member.id,
            Workspace.status == WorkspaceStatus.ACTIVE,
        )
        .order_by(WorkspaceMemberRole.created_at)
    ).all()
    held = {workspace.id: (role_row.role, workspace) for role_row, workspace in explicit}
    domain = member.email.rsplit("@", 1)[1].lower() if member.email and "@" in member.email else None
    if domain and member.email_verified:
        joinable = session.scalars(
            select(Workspace).where(Workspace.domain == domain, Workspace.status == WorkspaceStatus.ACTIVE)
        ).all()
        for workspace in joinable:
            if workspace.id not in held:
                auto_join = WorkspaceMemberRole(
                    workspace_id=workspace.id, workspace_member_id=member.id, role=Role.ADMIN
                )
                session.add(auto_join)
                held[workspace.id] = (Role.ADMIN, workspace)
        session.flush()
    roles = [MemberRole(workspace.id, workspace.name, role) for role, workspace in held.values()]
    parents = {
        workspace.id: role for role, workspace in held.values() if workspace.type == WorkspaceType.PARENT
    }
    if parents:
        children = session.scalars(
            select(Workspace)
            .where(
                Workspace.parent_workspace_id.in_(parents),
                Workspace.status == WorkspaceStatus.ACTIVE,
            )
            .order_by(Workspace.created_at)
        ).all()
        for child in children:
            if child.id not in held and child.parent_workspace_id is not None:
                role = parents[child.parent_workspace_id]
                roles.append(MemberRole(child.id, child.name, role, inherited=True))
    return roles


def current_role(member: WorkspaceMember, roles: list[MemberRole]) -> MemberRole | None:
    """The workspace the member works in: the last one chosen if still open to them, else the oldest."""
    for role in roles:
        if role.workspace_id == member.last_workspace_id:
            return role
    return roles[0] if roles else None
