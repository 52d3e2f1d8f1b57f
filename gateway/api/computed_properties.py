"""`/api/admin/computed-properties/*`: when each segment and user property was last computed, and a
way to compute a workspace now instead of at the next period (Dittofeed §6.13)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.compute.run import list_periods
from engine.resources import iso_ms
from gateway.admin_auth import authorized_workspace_id
from gateway.inputs import read_json, read_query, validate


class PeriodsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    step: Literal["ComputeState", "ComputeAssignments", "ProcessAssignments"] = "ComputeAssignments"


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


async def get_periods(request: Request) -> JSONResponse:
    read_query(request, PeriodsQuery)
    workspace_id = await authorized_workspace_id(request)
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


async def trigger_recompute(request: Request) -> Response:
    raw = await read_json(request)
    validate(TriggerRequest, raw)
    workspace_id = await authorized_workspace_id(request, raw)
    await run_in_threadpool(request.app.state.compute.compute, workspace_id)
    return Response(status_code=200)


routes = [
    Route("/api/admin/computed-properties/periods", get_periods, methods=["GET"], name="computed:periods"),
    Route(
        "/api/admin/computed-properties/trigger-recompute",
        trigger_recompute,
        methods=["POST"],
        name="computed:trigger_recompute",
    ),
]
