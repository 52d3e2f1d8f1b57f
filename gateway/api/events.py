"""`GET /api/admin/events`: search a workspace's events or download them as CSV (Dittofeed §6.7),
authorised by an admin key."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.event_search import (
    EventFilter,
    download_file_name,
    events_csv,
    list_event_property_keys,
    list_trait_keys,
    search_events,
)
from engine.workspaces import event_workspace_ids
from gateway.admin_auth import authorize_target
from gateway.api.attachments import csv_attachment
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_query

# 2299-12-31T23:59:59.999Z: the last instant ClickHouse's DateTime64 holds. No event is stored later,
# so a bound beyond it (a client's "no end") means the same clamped.
LAST_STORABLE_MS = 10_413_791_999_999


def _storable_ms(epoch_ms: float | None) -> int | None:
    return None if epoch_ms is None else int(min(epoch_ms, LAST_STORABLE_MS))


class DownloadEventsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str | None = None
    searchTerm: str | None = None
    userId: str | None = None
    messageId: list[str] = []
    startDate: float | None = Field(None, ge=0, description="epoch milliseconds, on processing time")
    endDate: float | None = Field(None, ge=0, description="epoch milliseconds, on processing time")
    event: list[str] = []
    broadcastId: str | None = None
    journeyId: str | None = None
    eventType: Literal["identify", "track", "page", "screen", "group", "alias"] | None = None

    def event_filter(self, workspace_ids: list[str]) -> EventFilter:
        return EventFilter(
            workspace_ids=workspace_ids,
            search_term=self.searchTerm,
            user_id=self.userId,
            message_ids=self.messageId,
            start_ms=_storable_ms(self.startDate),
            end_ms=_storable_ms(self.endDate),
            events=self.event,
            broadcast_id=self.broadcastId,
            journey_id=self.journeyId,
            event_type=self.eventType,
        )


class GetEventsQuery(DownloadEventsQuery):
    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=1, le=10_000)
    includeContext: bool = False


_ARRAYS = frozenset({"messageId", "event"})


async def get_events(request: Request, authorize: Authorize) -> JSONResponse:
    query = read_query(request, GetEventsQuery, arrays=_ARRAYS)
    where = query.event_filter(await _authorized_workspaces(request, authorize))
    page = await run_in_threadpool(
        search_events,
        request.app.state.event_store,
        where,
        offset=query.offset,
        limit=query.limit,
        include_context=query.includeContext,
    )
    return JSONResponse(page.to_json())


async def download_events(request: Request, authorize: Authorize) -> Response:
    query = read_query(request, DownloadEventsQuery, arrays=_ARRAYS)
    where = query.event_filter(await _authorized_workspaces(request, authorize))
    content = await run_in_threadpool(events_csv, request.app.state.event_store, where)
    file_name = download_file_name(datetime.now(UTC))
    return csv_attachment(content, file_name)


async def get_traits(request: Request, authorize: Authorize) -> JSONResponse:
    workspace_ids = await _authorized_workspaces(request, authorize)
    traits = await run_in_threadpool(list_trait_keys, request.app.state.event_store, workspace_ids)
    return JSONResponse({"traits": traits})


async def get_properties(request: Request, authorize: Authorize) -> JSONResponse:
    workspace_ids = await _authorized_workspaces(request, authorize)
    properties = await run_in_threadpool(
        list_event_property_keys, request.app.state.event_store, workspace_ids
    )
    return JSONResponse({"properties": properties})


async def _authorized_workspaces(request: Request, authorize: Authorize) -> list[str]:
    return await in_transaction(
        request, lambda session: event_workspace_ids(session, authorize(request, session, None))
    )


def event_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The events handlers under `prefix`, each request authorised by `authorize`."""
    search = partial(get_events, authorize=authorize)
    return [
        Route(prefix, search, methods=["GET"], name=f"{name}:list"),
        Route(f"{prefix}/", search, methods=["GET"], name=f"{name}:list/"),
        Route(
            f"{prefix}/download",
            partial(download_events, authorize=authorize),
            methods=["GET"],
            name=f"{name}:download",
        ),
        Route(
            f"{prefix}/traits",
            partial(get_traits, authorize=authorize),
            methods=["GET"],
            name=f"{name}:traits",
        ),
        Route(
            f"{prefix}/properties",
            partial(get_properties, authorize=authorize),
            methods=["GET"],
            name=f"{name}:properties",
        ),
    ]


routes = event_routes("/api/admin/events", authorize_target, name="events")
