"""Who may reach the workspace: the Members and roles page (engine.members, Admin only) and the Embed
allowed origins page (engine.embed_settings).

Members: one form gives a role by email (a new address becomes a member who can sign in once their
provider vouches for it; a member who holds a role gets the new one); each row changes or removes a
role. The workspace keeps at least one explicit Admin, so nobody removes the last way back in.
Origins: one per line, each checked as the API checks it (gateway.embed_policy.normalize_origin);
an empty list means "use the parent's", which the page shows when the workspace has none of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.settings_console import (
    EMBED_ORIGINS,
    MEMBERS,
    Outcome,
    SettingsPage,
    render_section,
    section_routes,
)
from engine import members
from engine.embed_settings import read_embed_settings, set_allowed_origins
from engine.errors import Conflict, InvalidInput
from engine.storage.gateway_models import EmbedSettings
from engine.storage.models import Role, Workspace
from gateway.api.permissions import EMAIL_PATTERN
from gateway.deps import in_transaction
from gateway.embed_policy import normalize_origin
from gateway.inputs import validate

ROLES: tuple[str, ...] = tuple(role.value for role in Role)
MAX_ORIGINS = 100


class MemberForm(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)

    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)


class RoleForm(MemberForm):
    role: Literal["Admin", "WorkspaceManager", "Author", "Viewer"]


@dataclass(frozen=True)
class MemberRow:
    email: str
    name: str | None
    verified: bool
    role: str


@dataclass(frozen=True)
class Origins:
    own: list[str] | None
    inherited: list[str]
    parent_name: str | None


async def show_members(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    def read(session: Session) -> list[MemberRow]:
        return [
            MemberRow(
                entry.member.email or "", entry.member.name, entry.member.email_verified, role.role.value
            )
            for entry in members.list_member_roles(session, page.workspace_id)
            for role in entry.roles
        ]

    rows = await in_transaction(request, read)
    return render_section(request, page, "settings/members.html", outcome, members=rows, roles=ROLES)


async def give_role(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    body = validate(RoleForm, form)
    role = Role(body.role)

    def write(session: Session) -> bool:
        try:
            members.create_member_role(session, page.workspace_id, body.email, role)
            return True
        except members.RoleAlreadyExists:
            _keep_an_admin(session, page.workspace_id, body.email, role)
            members.update_member_role(session, page.workspace_id, body.email, role)
            return False

    created = await in_transaction(request, write)
    done = "added as" if created else "is now"
    return Outcome(notice=f"{members.normalize_email(body.email)} {done} {role.value}.")


async def remove_member(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    body = validate(MemberForm, form)

    def write(session: Session) -> None:
        _keep_an_admin(session, page.workspace_id, body.email, None)
        members.delete_member_role(session, page.workspace_id, body.email)

    await in_transaction(request, write)
    return Outcome(notice=f"{members.normalize_email(body.email)} no longer has a role here.")


def _keep_an_admin(session: Session, workspace_id: str, email: str, new_role: Role | None) -> None:
    """:raises Conflict: the change would leave the workspace with no explicit Admin."""
    if new_role == Role.ADMIN:
        return
    admins = {
        entry.member.email
        for entry in members.list_member_roles(session, workspace_id)
        if any(role.role == Role.ADMIN for role in entry.roles)
    }
    if admins == {members.normalize_email(email)}:
        raise Conflict("This is the workspace's last Admin: make another member Admin first.")


async def show_origins(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    def read(session: Session) -> Origins:
        workspace = session.get(Workspace, page.workspace_id)
        assert workspace is not None
        own = session.get(EmbedSettings, page.workspace_id)
        parent = (
            session.get(Workspace, workspace.parent_workspace_id) if workspace.parent_workspace_id else None
        )
        inherited = list(read_embed_settings(session, parent).allowed_origins) if parent is not None else []
        return Origins(
            own=list(own.allowed_origins) if own is not None and own.allowed_origins is not None else None,
            inherited=inherited,
            parent_name=parent.name if parent is not None else None,
        )

    origins = await in_transaction(request, read)
    return render_section(request, page, "settings/embed_origins.html", outcome, origins=origins)


async def save_origins(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    origins = parse_origins(form.get("allowedOrigins", ""))

    def write(session: Session) -> None:
        set_allowed_origins(session, page.workspace_id, origins)

    await in_transaction(request, write)
    if origins is None:
        return Outcome(notice="This workspace now uses its parent's allowed origins, if any.")
    return Outcome(notice=f"{len(origins)} allowed origin(s) saved.")


def parse_origins(text: str) -> list[str] | None:
    """One origin per line, normalised and deduplicated; None for an empty list (inherit).

    :raises InvalidInput: a line is not a bare http(s) origin (`body/allowedOrigins/<index>`), or
        there are more than MAX_ORIGINS.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_ORIGINS:
        raise InvalidInput(
            f"body/allowedOrigins must have at most {MAX_ORIGINS} origins", field="body/allowedOrigins"
        )
    origins: list[str] = []
    for index, line in enumerate(lines):
        origin = normalize_origin(line)
        if origin is None:
            field = f"body/allowedOrigins/{index}"
            raise InvalidInput(
                f"{field} {line!r} must be an origin such as https://app.example.com (no path)", field=field
            )
        if origin not in origins:
            origins.append(origin)
    return origins or None


routes: list[Route] = [
    *section_routes(MEMBERS, show_members, {"role": give_role, "remove": remove_member}),
    *section_routes(EMBED_ORIGINS, show_origins, {"save": save_origins}),
]
