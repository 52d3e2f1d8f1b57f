"""`user-properties`: list, upsert, status and delete (Dittofeed §6.3).

The same handlers serve every mount of Dittofeed's user-properties controller; a mount supplies only
how a request is authorised to its target workspace. `routes` is the admin mount (admin API key,
`/api/admin/user-properties`); `user_property_routes` builds the others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import user_properties
from engine.definitions import validate_user_property_definition
from engine.storage.resource_models import ComputedPropertyStatus
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate

Status = Literal["NotStarted", "Running", "Paused"]


class _Body(BaseModel):
    # Upstream's TypeBox bodies allow unknown properties; they are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertUserPropertyBody(_Body):
    name: str
    id: str | None = None
    # Validated by engine.definitions, which names fields inside it precisely.
    definition: Any = None
    exampleValue: str | None = None
    status: Status | None = None


class UserPropertyStatusBody(_Body):
    id: str
    status: Status


class DeleteUserPropertyBody(_Body):
    id: str


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    ids: list[str] = []
    names: list[str] = []


def user_property_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The user-properties handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        query = read_query(request, ListQuery, arrays=frozenset({"ids", "names"}))

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            found = user_properties.list_user_properties(
                session, workspace.id, ids=query.ids, names=query.names
            )
            return [user_properties.user_property_resource(prop) for prop in found]

        return JSONResponse({"userProperties": await in_transaction(request, read)})

    async def upsert(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertUserPropertyBody, raw)
        definition = None
        if body.definition is not None:
            definition = validate_user_property_definition(raw["definition"])
        upsert = user_properties.UserPropertyUpsert(
            name=body.name,
            id=body.id,
            definition=definition,
            example_value=body.exampleValue,
            status=ComputedPropertyStatus(body.status) if body.status else None,
        )

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            prop = user_properties.upsert_user_property(session, workspace.id, upsert)
            return user_properties.user_property_resource(prop)

        return JSONResponse(await in_transaction(request, write))

    async def set_status(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UserPropertyStatusBody, raw)

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            status = ComputedPropertyStatus(body.status)
            prop = user_properties.set_user_property_status(session, workspace.id, body.id, status)
            return user_properties.user_property_resource(prop)

        return JSONResponse(await in_transaction(request, write))

    async def delete(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(DeleteUserPropertyBody, raw)

        def remove(session: Session) -> None:
            workspace = authorize(request, session, raw)
            user_properties.delete_user_property(
                session, request.app.state.event_store, workspace.id, body.id
            )

        await in_transaction(request, remove)
        return Response(status_code=204)

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(f"{prefix}/", list_all, methods=["GET"], name=f"{name}:list/"),
        Route(prefix, upsert, methods=["PUT"], name=f"{name}:upsert"),
        Route(f"{prefix}/", upsert, methods=["PUT"], name=f"{name}:upsert/"),
        Route(prefix, delete, methods=["DELETE"], name=f"{name}:delete"),
        Route(f"{prefix}/", delete, methods=["DELETE"], name=f"{name}:delete/"),
        Route(f"{prefix}/status", set_status, methods=["PATCH"], name=f"{name}:status"),
    ]


routes = user_property_routes("/api/admin/user-properties", authorize_target, name="admin:user_properties")
