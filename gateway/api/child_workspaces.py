"""`/api-l/admin/workspaces*`: a parent's backend creates, lists, reads and tombstones its children
(Dittofeed §4), authorised by the parent's admin API key."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import workspaces
from engine.errors import InvalidInput
from gateway.admin_auth import authorize_target
from gateway.deps import in_transaction
from gateway.inputs import read_json, validate


class UpsertChildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    workspaceId: str = Field(description="the parent workspace")
    name: str = Field(min_length=1)
    externalId: str = Field(min_length=1)
    domain: str | None = None


async def put_child(request: Request) -> JSONResponse:
    raw = await read_json(request)
    body = validate(UpsertChildRequest, raw)

    def upsert(session: Session) -> dict[str, str]:
        parent = authorize_target(request, session, raw)
        child = workspaces.upsert_child_workspace(session, parent, body.name, body.externalId, body.domain)
        return workspaces.describe_workspace(session, child).to_json()

    return JSONResponse(await in_transaction(request, upsert))


async def list_children(request: Request) -> JSONResponse:
    limit = _query_int(request, "limit", 100, maximum=1000)
    offset = _query_int(request, "offset", 0, maximum=None)

    def read(session: Session) -> dict[str, Any]:
        parent = authorize_target(request, session)
        children = workspaces.list_children(session, parent.id, limit=limit, offset=offset)
        return {"workspaces": [workspaces.describe_workspace(session, c).to_json() for c in children]}

    return JSONResponse(await in_transaction(request, read))


async def get_workspace(request: Request) -> JSONResponse:
    def read(session: Session) -> dict[str, str]:
        target = authorize_target(request, session, allow_inactive=True)
        return workspaces.describe_workspace(session, target).to_json()

    return JSONResponse(await in_transaction(request, read))


async def delete_workspace(request: Request) -> Response:
    def tombstone(session: Session) -> None:
        workspaces.tombstone_workspace(session, authorize_target(request, session, allow_inactive=True))

    await in_transaction(request, tombstone)
    return Response(status_code=201)


def _query_int(request: Request, name: str, default: int, *, maximum: int | None) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or (maximum is not None and int(value) > maximum):
        bound = f" at most {maximum}" if maximum is not None else ""
        raise InvalidInput(f"querystring/{name} must be a non-negative integer{bound}", field=name)
    return int(value)


routes = [
    Route("/api-l/admin/workspaces/child", put_child, methods=["PUT"], name="workspaces:put_child"),
    Route("/api-l/admin/workspaces/child", list_children, methods=["GET"], name="workspaces:list_children"),
    Route("/api-l/admin/workspaces/", get_workspace, methods=["GET"], name="workspaces:get"),
    Route("/api-l/admin/workspaces/", delete_workspace, methods=["DELETE"], name="workspaces:delete"),
]
