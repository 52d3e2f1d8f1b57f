"""Members on `/api/*` and the dashboard: who is asking, in which workspace, with which role.

By AUTH_MODE: `anonymous` opens the first workspace as Admin with no login (Dittofeed's dev mode);
`single-tenant` does the same once the shared password was entered; `multi-tenant` reads the member
from the session cookie that the OpenID login set, with the roles of `engine.member_roles`. As in
Dittofeed, a request works in the member's current workspace: naming another one is refused.
Roles: Viewer reads; Author edits resources; WorkspaceManager also settings, providers and keys;
Admin also members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.audit import Actor
from engine.errors import NotAuthenticated, PermissionDenied
from engine.member_roles import MemberRole, current_role, find_member_roles, role_at_least
from engine.storage.models import Role, Workspace, WorkspaceMember, WorkspaceStatus
from gateway.deps import Authorize, audit_context, in_transaction
from gateway.embed_policy import access_needed
from gateway.inputs import resolve_workspace_id


class NotOnboarded(PermissionDenied):
    """A signed-in member with no role in any active workspace."""


@dataclass(frozen=True)
class MemberContext:
    # None in anonymous and single-tenant modes, where nobody signs in individually.
    member: WorkspaceMember | None
    roles: list[MemberRole]
    current: MemberRole


def resolve_member(request: Request, session: Session) -> MemberContext:
    """The member behind the request's session cookie, their roles and current workspace.

    :raises NotAuthenticated: not signed in.
    :raises NotOnboarded: signed in, but no role anywhere.
    """
    mode = request.app.state.settings.auth_mode
    if mode != "multi-tenant":
        if mode == "single-tenant" and request.session.get("single_tenant") is not True:
            raise NotAuthenticated("Not signed in")
        workspace = session.scalars(
            select(Workspace)
            .where(Workspace.status == WorkspaceStatus.ACTIVE)
            .order_by(Workspace.created_at, Workspace.id)
            .limit(1)
        ).first()
        if workspace is None:
            raise NotOnboarded("No workspace exists yet")
        role = MemberRole(workspace.id, workspace.name, Role.ADMIN)
        audit_context(request).actor = Actor("Anonymous" if mode == "anonymous" else "Member", mode)
        return MemberContext(None, [role], role)
    member_id = request.session.get("member_id")
    member = session.get(WorkspaceMember, member_id) if isinstance(member_id, str) else None
    if member is None:
        raise NotAuthenticated("Not signed in")
    roles = find_member_roles(session, member)
    current = current_role(member, roles)
    if current is None:
        raise NotOnboarded("NotOnboarded: no role in any active workspace")
    audit_context(request).actor = Actor("Member", member.id)
    return MemberContext(member, roles, current)


def member_access(write_role: Role, *, read_role: Role = Role.VIEWER) -> Authorize:
    """The authoriser of a `/api/*` controller: `read_role` to read, `write_role` to change things."""

    def authorize(request: Request, session: Session, body: Any = None) -> Workspace:
        context = _checked_member(request, session, write_role, read_role)
        workspace_id = resolve_workspace_id(request, body)
        if workspace_id is not None and workspace_id != context.current.workspace_id:
            raise PermissionDenied("workspaceId is not the member's current workspace")
        workspace = session.get(Workspace, context.current.workspace_id)
        assert workspace is not None
        return workspace

    return authorize


def gate_routes(routes: list[Route], write_role: Role, *, read_role: Role = Role.VIEWER) -> list[Route]:
    """`routes` with the member and role checked before the handler reads its input, so a member
    without the role gets a 403 whatever they send (the handler's authoriser checks again)."""
    return [_gated(route, write_role, read_role) for route in routes]


def _gated(route: Route, write_role: Role, read_role: Role) -> Route:
    handler = route.endpoint

    async def gated(request: Request) -> Response:
        await in_transaction(
            request, lambda session: _checked_member(request, session, write_role, read_role)
        )
        response: Response = await handler(request)
        return response

    return Route(route.path, gated, methods=list(route.methods or ()), name=route.name)


def _checked_member(request: Request, session: Session, write_role: Role, read_role: Role) -> MemberContext:
    context: MemberContext | None = getattr(request.state, "member", None)
    if context is None:
        context = resolve_member(request, session)
        request.state.member = context
    path = request.scope["path"].removeprefix("/api/")
    needed = read_role if access_needed(request.method, path) == "read" else write_role
    if not role_at_least(context.current.role, needed):
        raise PermissionDenied(
            f"This needs the {needed.value} role or higher; yours is {context.current.role.value}"
        )
    return context
