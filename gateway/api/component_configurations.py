"""`component-configurations`: list, upsert and delete the stored shapes of embedded screens
(Dittofeed §3.3).

Only the admin mount exists (admin API key, `/api/admin/component-configurations`, with and without
the trailing slash); embedded sessions never see configurations (§2.5). A parent's key manages a
child's configurations by passing the child's `workspaceId`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import component_configurations
from engine.errors import InvalidInput
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertBody(_Body):
    name: str
    id: str | None = None
    # Validated by engine.component_configurations, which names fields inside it precisely.
    definition: Any = None


class DeleteQuery(_Body):
    id: str


def component_configuration_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The component-configuration handlers under `prefix` (and `prefix/`), authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        read_query(request, _Body)

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            return [
                component_configurations.configuration_resource(configuration)
                for configuration in component_configurations.list_configurations(session, workspace.id)
            ]

        return JSONResponse({"componentConfigurations": await in_transaction(request, read)})

    async def upsert(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertBody, raw)
        if "definition" in raw and raw["definition"] is None:
            raise InvalidInput("body/definition must be an object", field="body/definition")

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            configuration = component_configurations.upsert_configuration(
                session, workspace.id, body.name, body.id, body.definition
            )
            return component_configurations.configuration_resource(configuration)

        return JSONResponse(await in_transaction(request, write))

    async def delete(request: Request) -> Response:
        query = read_query(request, DeleteQuery)

        def remove(session: Session) -> None:
            workspace = authorize(request, session, None)
            component_configurations.delete_configuration(session, workspace.id, query.id)

        await in_transaction(request, remove)
        return Response(status_code=204)

    routes: list[Route] = []
    for path, suffix in ((prefix, ""), (f"{prefix}/", "/")):
        routes += [
            Route(path, list_all, methods=["GET"], name=f"{name}:list{suffix}"),
            Route(path, upsert, methods=["PUT"], name=f"{name}:upsert{suffix}"),
            Route(path, delete, methods=["DELETE"], name=f"{name}:delete{suffix}"),
        ]
    return routes


routes = component_configuration_routes(
    "/api/admin/component-configurations", authorize_target, name="admin:component_configurations"
)
