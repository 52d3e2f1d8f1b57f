"""`deliveries`: search, count and download a workspace's deliveries (Dittofeed §6.6).

`deliveries_routes` builds the handlers for one mount; `routes` is the admin mount (admin API key,
`/api/admin/deliveries`). Queries arrive in `qs` syntax (`userId[]=…`, `triggeringProperties[0][key]=…`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import deliveries
from engine.sent_messages import PropertyMatch, SentFilter
from gateway.admin_auth import authorize_target
from gateway.api.attachments import csv_attachment
from gateway.deps import Authorize, in_transaction
from gateway.inputs import validate
from gateway.query_strings import DateText, OneOrMany, read_nested_query

Channel = Literal["Email", "MobilePush", "Sms", "Webhook"]


class KeyValue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    value: str | float


class DeliveryFilterQuery(BaseModel):
    """The filters shared by search, count and download."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    workspaceId: str
    journeyId: str | None = None
    broadcastId: str | None = None
    userId: OneOrMany[str] = []
    channels: OneOrMany[Channel] = []
    templateIds: OneOrMany[str] = []
    to: OneOrMany[str] = []
    from_: OneOrMany[str] = Field([], alias="from")
    statuses: OneOrMany[str] = []
    startDate: DateText | None = None
    endDate: DateText | None = None
    groupId: OneOrMany[str] = []
    triggeringProperties: OneOrMany[KeyValue] = []
    contextValues: OneOrMany[KeyValue] = []
    # Accepted and unused, as upstream.
    fromIdentifier: str | None = None
    toIdentifier: str | None = None
    sortBy: deliveries.SortBy = "sentAt"
    sortDirection: deliveries.SortDirection = "Desc"

    def delivery_filter(self) -> deliveries.DeliveryFilter:
        sent = SentFilter(
            journey_ids=[self.journeyId] if self.journeyId else [],
            broadcast_ids=[self.broadcastId] if self.broadcastId else [],
            user_ids=self.userId,
            channels=self.channels,
            template_ids=self.templateIds,
            to=self.to,
            senders=self.from_,
            start=self.startDate,
            end=self.endDate,
            group_ids=self.groupId,
            triggering_properties=[PropertyMatch(p.key, p.value) for p in self.triggeringProperties],
            context_values=[PropertyMatch(p.key, p.value) for p in self.contextValues],
        )
        return deliveries.DeliveryFilter(sent=sent, statuses=self.statuses)

    def sort(self) -> deliveries.DeliverySort:
        return deliveries.DeliverySort(self.sortBy, self.sortDirection)


class SearchDeliveriesQuery(DeliveryFilterQuery):
    limit: int = Field(deliveries.DEFAULT_LIMIT, ge=1, le=deliveries.MAX_DOWNLOAD_ROWS)
    cursor: str | None = None


def deliveries_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The deliveries handlers under `prefix`, each request authorised by `authorize`."""

    async def workspace_of(request: Request) -> str:
        return await in_transaction(request, lambda session: authorize(request, session, None).id)

    async def search(request: Request) -> JSONResponse:
        query = validate(SearchDeliveriesQuery, read_nested_query(request), where="querystring")
        workspace_id = await workspace_of(request)
        page = await run_in_threadpool(
            deliveries.search_deliveries,
            request.app.state.event_store,
            workspace_id,
            query.delivery_filter(),
            sort=query.sort(),
            limit=query.limit,
            cursor=query.cursor,
        )
        return JSONResponse(page)

    async def count(request: Request) -> JSONResponse:
        query = validate(DeliveryFilterQuery, read_nested_query(request), where="querystring")
        workspace_id = await workspace_of(request)
        total = await run_in_threadpool(
            deliveries.count_deliveries,
            request.app.state.event_store,
            workspace_id,
            query.delivery_filter(),
        )
        return JSONResponse({"count": total})

    async def download(request: Request) -> Response:
        query = validate(DeliveryFilterQuery, read_nested_query(request), where="querystring")
        workspace_id = await workspace_of(request)
        content = await run_in_threadpool(
            deliveries.deliveries_csv,
            request.app.state.event_store,
            workspace_id,
            query.delivery_filter(),
            query.sort(),
        )
        file_name = deliveries.download_file_name(datetime.now(UTC))
        return csv_attachment(content, file_name)

    return [
        Route(prefix, search, methods=["GET"], name=f"{name}:search"),
        Route(f"{prefix}/", search, methods=["GET"], name=f"{name}:search/"),
        Route(f"{prefix}/count", count, methods=["GET"], name=f"{name}:count"),
        Route(f"{prefix}/download", download, methods=["GET"], name=f"{name}:download"),
    ]


routes = deliveries_routes("/api/admin/deliveries", authorize_target, name="admin:deliveries")
