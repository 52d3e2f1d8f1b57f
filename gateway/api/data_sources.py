"""`settings/data-sources`: read, set and remove a workspace's Segment source (Dittofeed §5.2).

The same handlers serve every mount of Dittofeed's settings controller; a mount supplies only how a
request is authorised to its target workspace. `routes` is the admin mount (admin API key,
`/api/admin/settings/data-sources`); `data_source_routes` builds others, e.g. the dashboard's
`/api/settings/data-sources`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import data_sources
from engine.data_sources import DataSourceType
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, validate


class SegmentIOVariant(BaseModel):
    model_config = ConfigDict(strict=True)

    type: Literal["SegmentIO"]
    sharedSecret: str = Field(min_length=1)

    @field_validator("sharedSecret")
    @classmethod
    def _encodable(cls, value: str) -> str:
        # A JSON "\ud800" escape decodes to a lone surrogate, which no database (nor HMAC) can take.
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must not contain a lone UTF-16 surrogate") from None
        return value


class UpsertDataSourceRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    workspaceId: str
    variant: SegmentIOVariant


class ListDataSourcesQuery(BaseModel):
    workspaceId: str


class DeleteDataSourceQuery(BaseModel):
    workspaceId: str
    type: DataSourceType


def data_source_routes(path: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The data-sources handlers at `path`, each request authorised by `authorize`."""

    async def list_sources(request: Request) -> JSONResponse:
        validate(ListDataSourcesQuery, dict(request.query_params), where="querystring")

        def read(session: Session) -> list[DataSourceType]:
            return data_sources.configured_data_sources(session, authorize(request, session, None).id)

        return JSONResponse({"dataSourceConfigurations": await in_transaction(request, read)})

    async def put_source(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertDataSourceRequest, raw)
        secret = body.variant.sharedSecret

        def upsert(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            config_id = data_sources.upsert_segment_io(session, workspace.id, secret)
            # Upstream echoes the variant it was sent; the secret is the caller's own value.
            return {"id": config_id, "workspaceId": workspace.id, "variant": body.variant.model_dump()}

        return JSONResponse(await in_transaction(request, upsert))

    async def delete_source(request: Request) -> Response:
        query = validate(DeleteDataSourceQuery, dict(request.query_params), where="querystring")

        def remove(session: Session) -> None:
            data_sources.delete_data_source(session, authorize(request, session, None).id, query.type)

        await in_transaction(request, remove)
        return Response(status_code=204)

    return [
        Route(path, list_sources, methods=["GET"], name=f"{name}:list"),
        Route(path, put_source, methods=["PUT"], name=f"{name}:put"),
        Route(path, delete_source, methods=["DELETE"], name=f"{name}:delete"),
    ]


routes = data_source_routes("/api/admin/settings/data-sources", authorize_target, name="admin:data_sources")
