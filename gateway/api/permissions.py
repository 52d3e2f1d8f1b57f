"""`/api/permissions`: the members of a workspace and their roles, managed by its Admins (Dittofeed §1.5).

- `GET ?workspaceId` → `{memberRoles: [{member, roles}]}`, the members holding a role in the workspace.
- `POST {workspaceId, email, role}` → 201 the role (the member is created by email if unknown; 400 if
  they already hold a role there).
- `PUT {workspaceId, email, role}` → 200 the role; 404 when the member holds none there.
- `DELETE {workspaceId, email}` → 204; 404 when the member holds none there.

Reading the list needs Admin too: it names every member's address. `permission_routes` builds the
handlers for one mount; `routes` is the dashboard mount (member session, `gateway.member_auth`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import members
from engine.storage.models import Role
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate

# One `@`, something on each side, no whitespace: enough to refuse a typo, not a full RFC 5322 parser.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class MemberBody(_Body):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)


class RoleBody(MemberBody):
    role: Literal["Admin", "WorkspaceManager", "Author", "Viewer"]


def permission_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The member-role handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        read_query(request, _Body)

        def read(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, None)
            entries = members.list_member_roles(session, workspace.id)
            return {"memberRoles": [entry.to_json() for entry in entries]}

        return JSONResponse(await in_transaction(request, read))

    async def create(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(RoleBody, raw)

        def write(session: Session) -> dict[str, str]:
            workspace = authorize(request, session, raw)
            return members.create_member_role(session, workspace.id, body.email, Role(body.role)).to_json()

        return JSONResponse(await in_transaction(request, write), status_code=201)

    async def update(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(RoleBody, raw)

        def write(session: Session) -> dict[str, str]:
            workspace = authorize(request, session, raw)
            return members.update_member_role(session, workspace.id, body.email, Role(body.role)).to_json()

        return JSONResponse(await in_transaction(request, write))

    async def delete(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(MemberBody, raw)

        def remove(session: Session) -> None:
            workspace = authorize(request, session, raw)
            members.delete_member_role(session, workspace.id, body.email)

        await in_transaction(request, remove)
        return Response(status_code=204)

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(prefix, create, methods=["POST"], name=f"{name}:create"),
        Route(prefix, update, methods=["PUT"], name=f"{name}:update"),
        Route(prefix, delete, methods=["DELETE"], name=f"{name}:delete"),
    ]
