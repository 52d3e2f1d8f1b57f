"""Key management (Dittofeed §1.2): write keys under `settings/write-keys` (dashboard and admin
mounts) and admin API keys under `/api/admin-keys` (dashboard only, as upstream).

An admin API key's plaintext appears once, in the creation response; listings show names and ids.
Write keys are public by design (they ship in browsers), so their listing returns the value.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import credentials
from engine.errors import NotFound
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate


class WriteKeyBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    writeKeyName: str = Field(min_length=1, max_length=200)


class AdminKeyBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    name: str = Field(min_length=1, max_length=200)


class WorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str | None = None


class AdminKeyQuery(WorkspaceQuery):
    id: str


async def put_write_key(request: Request, authorize: Authorize) -> Response:
    raw = await read_json(request)
    body = validate(WriteKeyBody, raw)

    def create(session: Session) -> None:
        credentials.get_or_create_write_key(session, authorize(request, session, raw).id, body.writeKeyName)

    await in_transaction(request, create)
    return Response(status_code=204)


async def list_write_keys(request: Request, authorize: Authorize) -> JSONResponse:
    read_query(request, WorkspaceQuery)

    def read(session: Session) -> list[dict[str, Any]]:
        workspace_id = authorize(request, session, None).id
        return [
            {
                "writeKeyName": secret.name,
                "writeKeyValue": secret.value,
                "secretId": secret.id,
                "workspaceId": workspace_id,
            }
            for secret in credentials.list_write_keys(session, workspace_id)
        ]

    return JSONResponse(await in_transaction(request, read))


async def delete_write_key(request: Request, authorize: Authorize) -> Response:
    raw = await read_json(request)
    body = validate(WriteKeyBody, raw)

    def delete(session: Session) -> None:
        if not credentials.delete_write_key(session, authorize(request, session, raw).id, body.writeKeyName):
            raise NotFound(f"no write key named {body.writeKeyName!r}")

    await in_transaction(request, delete)
    return Response(status_code=204)


async def create_admin_key(request: Request, authorize: Authorize) -> JSONResponse:
    raw = await read_json(request)
    body = validate(AdminKeyBody, raw)

    def create(session: Session) -> dict[str, Any]:
        issued = credentials.create_admin_api_key(session, authorize(request, session, raw).id, body.name)
        return {
            "workspaceId": issued.workspace_id,
            "id": issued.id,
            "name": issued.name,
            "createdAt": issued.created_at_ms,
            "apiKey": issued.api_key,
        }

    return JSONResponse(await in_transaction(request, create))


async def list_admin_keys(request: Request, authorize: Authorize) -> JSONResponse:
    read_query(request, WorkspaceQuery)

    def read(session: Session) -> list[dict[str, Any]]:
        workspace_id = authorize(request, session, None).id
        return [
            {
                "workspaceId": workspace_id,
                "id": key.id,
                "name": key.name,
                "createdAt": int(key.created_at.timestamp() * 1000),
            }
            for key in credentials.list_admin_keys(session, workspace_id)
        ]

    return JSONResponse(await in_transaction(request, read))


async def delete_admin_key(request: Request, authorize: Authorize) -> Response:
    query = read_query(request, AdminKeyQuery)

    def delete(session: Session) -> None:
        if not credentials.delete_admin_key(session, authorize(request, session, None).id, query.id):
            raise NotFound(f"no admin API key with id {query.id}")

    await in_transaction(request, delete)
    return Response(status_code=200)


def write_key_routes(path: str, authorize: Authorize, *, name: str) -> list[Route]:
    return [
        Route(path, partial(list_write_keys, authorize=authorize), methods=["GET"], name=f"{name}:list"),
        Route(path, partial(put_write_key, authorize=authorize), methods=["PUT"], name=f"{name}:put"),
        Route(
            path, partial(delete_write_key, authorize=authorize), methods=["DELETE"], name=f"{name}:delete"
        ),
    ]


def admin_key_routes(path: str, authorize: Authorize, *, name: str) -> list[Route]:
    return [
        Route(path, partial(list_admin_keys, authorize=authorize), methods=["GET"], name=f"{name}:list"),
        Route(path, partial(create_admin_key, authorize=authorize), methods=["POST"], name=f"{name}:create"),
        Route(
            path, partial(delete_admin_key, authorize=authorize), methods=["DELETE"], name=f"{name}:delete"
        ),
    ]
