"""`analysis`: chart data, summary and journey stats over a workspace's deliveries (Dittofeed §6.12).

`analysis_routes` builds the handlers for one mount; `routes` is the admin mount (admin API key,
`/api/admin/analysis`). Query objects arrive in `qs` syntax (`filters[journeyIds][0]=…`).

On an embedded request the workspace's AnalysisChart configuration is enforced on chart data and
summary (engine.configuration_enforcement: hard-coded filters replace what was asked, a filter,
channel or group-by outside the allowed ones is a 403).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine import analysis, component_configurations, configuration_enforcement
from engine.component_configurations import AnalysisChartDefinition
from engine.sent_messages import SentFilter
from gateway.admin_auth import authorize_target
from gateway.api.deliveries import Channel
from gateway.deps import Authorize, in_transaction
from gateway.embedded_auth import embedded_session
from gateway.inputs import validate
from gateway.query_strings import DateText, OneOrMany, read_nested_query

Granularity = Literal[
    "auto",
    "30second",
    "1minute",
    "5minutes",
    "10minutes",
    "30minutes",
    "1hour",
    "6hours",
    "12hours",
    "1day",
    "7days",
    "30days",
]


class _Filters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    journeyIds: OneOrMany[str] = []
    broadcastIds: OneOrMany[str] = []
    providers: OneOrMany[str] = []
    templateIds: OneOrMany[str] = []
    userIds: OneOrMany[str] = []
    # Upstream accepts and ignores it; here only messages that reached one of the states count.
    messageStates: OneOrMany[analysis.MessageState] = []


class ChartFilters(_Filters):
    channels: OneOrMany[Channel] = []


class SummaryFilters(_Filters):
    channel: Channel | None = None


class _RangeQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    startDate: DateText
    endDate: DateText
    displayMode: str | None = None


class ChartDataQuery(_RangeQuery):
    granularity: Granularity = "auto"
    groupBy: analysis.GroupBy | None = None
    filters: ChartFilters = ChartFilters()


class SummaryQuery(_RangeQuery):
    filters: SummaryFilters = SummaryFilters()


class JourneyStatsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    journeyId: str
    startDate: DateText | None = None
    endDate: DateText | None = None


def _analysis_filter(query: _RangeQuery, filters: _Filters, channels: list[str]) -> analysis.AnalysisFilter:
    sent = SentFilter(
        journey_ids=filters.journeyIds,
        broadcast_ids=filters.broadcastIds,
        user_ids=filters.userIds,
        channels=channels,
        template_ids=filters.templateIds,
        providers=filters.providers,
        start=query.startDate,
        end=query.endDate,
    )
    return analysis.AnalysisFilter(sent=sent, message_states=filters.messageStates)


def analysis_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The analysis handlers under `prefix`, each request authorised by `authorize`."""

    async def workspace_of(request: Request) -> str:
        return await in_transaction(request, lambda session: authorize(request, session, None).id)

    async def chart_scope(request: Request) -> tuple[str, AnalysisChartDefinition | None]:
        """The workspace, and the AnalysisChart configuration an embedded request is held to."""

        def read(session: Session) -> tuple[str, AnalysisChartDefinition | None]:
            workspace = authorize(request, session, None)
            if embedded_session(request) is None:
                return workspace.id, None
            chart = component_configurations.effective_configuration(session, workspace.id, "AnalysisChart")
            return workspace.id, chart

        return await in_transaction(request, read)

    async def chart_data(request: Request) -> JSONResponse:
        query = validate(ChartDataQuery, read_nested_query(request), where="querystring")
        workspace_id, chart = await chart_scope(request)
        configuration_enforcement.check_group_by(chart, query.groupBy)
        filters = query.filters.model_copy(
            update=configuration_enforcement.restrict_analysis_filters(chart, query.filters.model_dump())
        )
        where = _analysis_filter(query, filters, list(filters.channels))
        result: dict[str, Any] = await run_in_threadpool(
            lambda: analysis.chart_data(
                request.app.state.event_store,
                workspace_id,
                where,
                granularity=query.granularity,
                group_by=query.groupBy,
            )
        )
        return JSONResponse(result)

    async def summary(request: Request) -> JSONResponse:
        query = validate(SummaryQuery, read_nested_query(request), where="querystring")
        workspace_id, chart = await chart_scope(request)
        asked = {
            **query.filters.model_dump(),
            "channels": [query.filters.channel] if query.filters.channel else [],
        }
        restricted = configuration_enforcement.restrict_analysis_filters(
            chart, asked, field_names={"channels": "channel"}
        )
        channels = restricted.pop("channels")
        channel = configuration_enforcement.summary_channel(query.filters.channel, channels)
        where = _analysis_filter(query, query.filters.model_copy(update=restricted), channels)
        result: dict[str, Any] = await run_in_threadpool(
            lambda: analysis.summary(request.app.state.event_store, workspace_id, where, channel=channel)
        )
        return JSONResponse(result)

    async def journey_stats(request: Request) -> JSONResponse:
        query = validate(JourneyStatsQuery, read_nested_query(request), where="querystring")
        workspace_id = await workspace_of(request)
        result: dict[str, Any] = await run_in_threadpool(
            lambda: analysis.journey_stats(
                request.app.state.event_store,
                workspace_id,
                query.journeyId,
                start=query.startDate,
                end=query.endDate,
            )
        )
        return JSONResponse(result)

    return [
        Route(f"{prefix}/chart-data", chart_data, methods=["GET"], name=f"{name}:chart_data"),
        Route(f"{prefix}/summary", summary, methods=["GET"], name=f"{name}:summary"),
        Route(f"{prefix}/journey-stats", journey_stats, methods=["GET"], name=f"{name}:journey_stats"),
    ]


routes = analysis_routes("/api/admin/analysis", authorize_target, name="admin:analysis")
