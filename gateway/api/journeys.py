"""`journeys`: list, upsert, delete and per-node stats of journeys (Dittofeed §6.4).

The same handlers serve every mount of Dittofeed's journeys controller; a mount supplies only how a
request is authorised to its target workspace. `routes` is the admin mount (admin API key,
`/api/admin/journeys`); `journey_routes` builds the others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.errors import NotFound
from engine.journeys import resources as journeys
from engine.resources import UNSET
from engine.storage.journey_models import Journey, JourneyStatus
from engine.storage.models import utcnow
from engine.storage.resource_models import ResourceType
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate


class _Body(BaseModel):
    # Upstream's TypeBox bodies allow unknown properties; they are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertJourneyBody(_Body):
    id: str | None = None
    name: str | None = None
    # Validated by engine.journeys, which names fields inside them precisely.
    definition: Any = None
    draft: Any = None
    status: Literal["NotStarted", "Running", "Paused", "Broadcast"] | None = None
    canRunMultiple: bool | None = None


class JourneyIdBody(_Body):
    id: str


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    ids: list[str] = []
    resourceType: Literal["Declarative", "Internal"] | None = None
    getPartial: bool = False


class DeleteQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    id: str


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    journeyIds: list[str] = []


def journey_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The journeys handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        query = read_query(request, ListQuery, arrays=frozenset({"ids"}))
        kind = ResourceType(query.resourceType) if query.resourceType else None

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            found = journeys.list_journeys(session, workspace.id, query.ids, kind)
            return [journeys.journey_resource(journey, partial=query.getPartial) for journey in found]

        return JSONResponse({"journeys": await in_transaction(request, read)})

    async def upsert(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertJourneyBody, raw)
        now = utcnow()

        def write(session: Session) -> tuple[dict[str, Any], str, str | None]:
            workspace = authorize(request, session, raw)
            journey = journeys.upsert_journey(
                session,
                workspace.id,
                id=body.id,
                name=body.name,
                definition=body.definition,
                draft=raw.get("draft", UNSET),
                status=JourneyStatus(body.status) if body.status else None,
                can_run_multiple=body.canRunMultiple,
                now=now,
            )
            manual = journeys.started_manual_segment(session, journey, started_at=now)
            return journeys.journey_resource(journey), workspace.id, manual

        resource, workspace_id, manual_segment = await in_transaction(request, write)
        if manual_segment is not None:
            # Its present members enter now rather than whenever the segment is next recomputed.
            await run_in_threadpool(request.app.state.compute.compute, workspace_id, {manual_segment})
        return JSONResponse(resource)

    async def delete(request: Request) -> Response:
        raw = await read_json(request)
        return await _delete(request, validate(JourneyIdBody, raw).id, raw)

    async def delete_by_query(request: Request) -> Response:
        return await _delete(request, read_query(request, DeleteQuery).id, None)

    async def _delete(request: Request, journey_id: str, raw: Any) -> Response:
        def remove(session: Session) -> bool:
            workspace = authorize(request, session, raw)
            return journeys.delete_journey(session, workspace.id, journey_id)

        if not await in_transaction(request, remove):
            raise NotFound("Journey not found")
        return Response(status_code=204)

    async def stats(request: Request) -> JSONResponse:
        query = read_query(request, StatsQuery, arrays=frozenset({"journeyIds"}))

        def read(session: Session) -> tuple[str, list[Journey]]:
            workspace = authorize(request, session, None)
            return workspace.id, journeys.started_journeys(session, workspace.id, query.journeyIds)

        workspace_id, started = await in_transaction(request, read)
        result = await run_in_threadpool(
            journeys.journeys_stats, request.app.state.event_store, workspace_id, started
        )
        return JSONResponse(result)

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(f"{prefix}/", list_all, methods=["GET"], name=f"{name}:list/"),
        Route(prefix, upsert, methods=["PUT"], name=f"{name}:upsert"),
        Route(f"{prefix}/", upsert, methods=["PUT"], name=f"{name}:upsert/"),
        Route(prefix, delete, methods=["DELETE"], name=f"{name}:delete"),
        Route(f"{prefix}/", delete, methods=["DELETE"], name=f"{name}:delete/"),
        Route(f"{prefix}/v2", delete_by_query, methods=["DELETE"], name=f"{name}:delete_v2"),
        Route(f"{prefix}/stats", stats, methods=["GET"], name=f"{name}:stats"),
    ]


routes = journey_routes("/api/admin/journeys", authorize_target, name="admin:journeys")
