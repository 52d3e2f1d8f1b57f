"""`/api-l/admin/theme`: a workspace's theme (colours, font, radius) for its screens.

A parent's theme is its children's default; a child's own values override it field by field.
`PUT` replaces the workspace's own theme, `DELETE` removes it (the workspace inherits again).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.storage.models import Workspace
from engine.themes import read_effective_theme, read_own_theme, set_theme, validate_theme
from gateway.admin_auth import authorize_target
from gateway.deps import in_transaction
from gateway.inputs import read_json, read_query, validate


class WorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str | None = None


class ThemeBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    # Validated by engine.themes, which names the field inside it.
    theme: dict[str, Any]


async def get_theme(request: Request) -> JSONResponse:
    read_query(request, WorkspaceQuery)
    return JSONResponse(
        await in_transaction(request, lambda session: _describe(session, authorize_target(request, session)))
    )


async def put_theme(request: Request) -> JSONResponse:
    raw = await read_json(request)
    body = validate(ThemeBody, raw)
    theme = validate_theme(body.theme)

    def write(session: Session) -> dict[str, Any]:
        workspace = authorize_target(request, session, raw)
        set_theme(session, workspace.id, theme)
        session.flush()
        return _describe(session, workspace)

    return JSONResponse(await in_transaction(request, write))


async def delete_theme(request: Request) -> JSONResponse:
    read_query(request, WorkspaceQuery)

    def write(session: Session) -> dict[str, Any]:
        workspace = authorize_target(request, session)
        set_theme(session, workspace.id, None)
        session.flush()
        return _describe(session, workspace)

    return JSONResponse(await in_transaction(request, write))


def _describe(session: Session, workspace: Workspace) -> dict[str, Any]:
    return {
        "workspaceId": workspace.id,
        "theme": read_own_theme(session, workspace.id),
        "effectiveTheme": read_effective_theme(session, workspace),
    }


routes = [
    Route("/api-l/admin/theme", get_theme, methods=["GET"], name="theme:get"),
    Route("/api-l/admin/theme", put_theme, methods=["PUT"], name="theme:put"),
    Route("/api-l/admin/theme", delete_theme, methods=["DELETE"], name="theme:delete"),
]
