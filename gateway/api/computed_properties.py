"""`/api/admin/computed-properties/*`: when each segment and user property was last computed, and a
way to compute a workspace now instead of at the next period (Dittofeed §6.13)."""

from __future__ import annotations

from functools import partial
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.compute.run import list_periods
from engine.resources import iso_ms
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate


class PeriodsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    step: Literal["ComputeState", "ComputeAssignments", "ProcessAssignments"] = "ComputeAssignments"


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


async def get_periods(request: Request, authorize: Authorize) -> JSONResponse:
    read_query(request, PeriodsQuery)
    workspace_id = await in_transaction(request, lambda session: authorize(request, session, None).id)
    periods = await run_in_threadpool(list_periods, request.app.state.event_store, workspace_id)
    return JSONResponse(
        {
            "periods": [
                {
                    "id": property_id,
                    "workspaceId": workspace_id,
                    "type": "Segment" if kind == "segment" else "UserProperty",
                    "lastRecomputed": iso_ms(moment),
                }
                for property_id, kind, moment in periods
            ]
        }
    )


async def trigger_recompute(request: Request, authorize: Authorize) -> Response:
    raw = await read_json(request)
    validate(TriggerRequest, raw)
    workspace_id = await in_transaction(request, lambda session: authorize(request, session, raw).id)
    await run_in_threadpool(request.app.state.compute.compute, workspace_id)
    return Response(status_code=200)


def computed_property_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The computed-properties handlers under `prefix`, each request authorised by `authorize`."""
    return [
        Route(
            f"{prefix}/periods",
            partial(get_periods, authorize=authorize),
            methods=["GET"],
            name=f"{name}:periods",
        ),
        Route(
            f"{prefix}/trigger-recompute",
            partial(trigger_recompute, authorize=authorize),
            methods=["POST"],
            name=f"{name}:trigger_recompute",
        ),
    ]


routes = computed_property_routes("/api/admin/computed-properties", authorize_target, name="computed")
