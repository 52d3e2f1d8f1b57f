"""The analysis chart screen (Dittofeed `/analysis-chart`, component AnalysisChart): messages sent
over time, per group if asked, with the summary numbers, a CSV of the series and drill-down links
into the deliveries screen.

The page is a plain GET form (boosted by htmx): every control is a query parameter, so a view is a
link. Parameters: `range` (24h, 7d, 30d — ending now — or custom with `startDate` / `endDate`, UTC),
`granularity`, `groupBy`, `display` (count, or percent: each point as a share of its period's total —
the messages sent in that period when grouped by message state, else the sum of the groups), and
the filters `channels`, `messageStates`, `templateIds`, `journeyIds`, `broadcastIds`, `providers`,
`userIds`, each repeatable.

Embedded, the workspace's AnalysisChart configuration is enforced as on `/api-l/embedded/analysis`
(engine.configuration_enforcement): hard-coded filters replace what the query asks, a filter or
group-by outside the allowed ones is a 403, a request naming no channel is narrowed to the allowed
channels; and the controls it does not allow are not rendered. The member console is unrestricted,
as the dashboard API is.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from components.analysis_series import (
    CHANNELS,
    FILTER_LABELS,
    GRANULARITIES,
    GROUP_BY_LABELS,
    MAX_BUCKETS,
    MESSAGE_STATES,
    PATH,
    STATE_LABELS,
    SUMMARY_FIELDS,
    SUMMARY_LABELS,
    ChartQuery,
    ChartResult,
    Option,
    SeriesData,
    Window,
    deliveries_link,
    granularity_step,
    read_chart,
)
from components.screens import Screen, render, screen_routes
from components.svg_chart import Series, TimeSeriesChart, format_value, render_svg
from engine.component_configurations import (
    ALWAYS_ALLOWED_GROUP_BY,
    FILTER_KEYS,
)
from engine.messaging.providers.registry import EMAIL_PROVIDERS, PUSH_PROVIDERS, SMS_PROVIDERS
from engine.resources import iso_ms
from engine.spreadsheet_cells import inert_cell

# -- handlers ----------------------------------------------------------------------------------------


async def show_chart(request: Request, screen: Screen) -> Response:
    result = await read_chart(request, screen, with_summary=True)
    assert result.summary is not None
    display = result.query.display
    chart_svg = render_svg(
        TimeSeriesChart(
            title=_chart_title(result),
            buckets=result.buckets,
            series=[
                Series(item.label, item.values(display), item.href, item.point_hrefs)
                for item in result.series
            ],
            percent=display == "percent",
        )
    )
    return render(
        request,
        screen,
        "analysis/page.html",
        page=_page_view(screen, result),
        chart_svg=chart_svg,
        summary=_summary_view(result.summary, result.summary_channel),
        summary_channel=result.summary_channel,
        rows=_table_rows(result),
    )


async def download_chart(request: Request, screen: Screen) -> Response:
    result = await read_chart(request, screen)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "groupKey", "groupLabel", "count", "percent"])
    for item in result.series:
        for position, bucket in enumerate(result.buckets):
            writer.writerow(
                [
                    iso_ms(bucket),
                    inert_cell(item.key or ""),
                    inert_cell(item.label),
                    item.counts[position],
                    f"{item.shares[position]:.2f}",
                ]
            )
    name = f"analysis-{result.window.start:%Y-%m-%d}-{result.window.end:%Y-%m-%d}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}", "Cache-Control": "no-store"},
    )


routes = [
    *screen_routes(PATH, show_chart, component="AnalysisChart", name="analysis_chart"),
    *screen_routes(
        f"{PATH}/download", download_chart, component="AnalysisChart", name="analysis_chart:download"
    ),
]


# -- the page's view ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterControl:
    key: str
    label: str
    kind: Literal["checkboxes", "select", "text"]
    options: list[Option]
    selected: list[str]


@dataclass(frozen=True)
class FixedFilter:
    label: str
    values: list[str]


@dataclass(frozen=True)
class PageView:
    """What page.html shows: the form's controls (only those the configuration allows), their
    current values, the fixed filters, and the links (display toggle, CSV, deliveries)."""

    action: str
    preset: str
    presets: list[Option]
    start_input: str
    end_input: str
    granularity: str
    granularities: list[Option]
    resolved_granularity: str
    group_by: str
    group_by_options: list[Option]
    display: str
    controls: list[FilterControl]
    fixed: list[FixedFilter]
    count_link: str
    percent_link: str
    download_link: str
    download_name: str
    deliveries_link: str
    series: list[SeriesData]


def _page_view(screen: Screen, result: ChartResult) -> PageView:
    query, window, context, chart = result.query, result.window, result.context, result.context.chart
    hardcoded = (
        chart.hardcodedFilters.model_dump(exclude_none=True) if chart and chart.hardcodedFilters else {}
    )
    shown = [
        key
        for key in FILTER_KEYS
        if key not in hardcoded
        and (chart is None or chart.allowedFilters is None or key in chart.allowedFilters)
    ]
    channels = chart.allowedChannels if chart and chart.allowedChannels is not None else list(CHANNELS)
    providers = sorted({*EMAIL_PROVIDERS, *SMS_PROVIDERS, *PUSH_PROVIDERS, *query.providers})
    options: dict[str, tuple[Literal["checkboxes", "select", "text"], list[Option]]] = {
        "channels": ("checkboxes", [Option(channel, channel) for channel in channels]),
        "messageStates": ("checkboxes", [Option(state, STATE_LABELS[state]) for state in MESSAGE_STATES]),
        "templateIds": ("select", context.templates),
        "journeyIds": ("select", context.journeys),
        "broadcastIds": ("select", context.broadcasts),
        "providers": ("select", [Option(provider, provider) for provider in providers]),
        "userIds": ("text", []),
    }
    order = ("channels", "messageStates", "templateIds", "journeyIds", "broadcastIds", "providers", "userIds")
    controls = [
        FilterControl(key, FILTER_LABELS[key], options[key][0], options[key][1], list(getattr(query, key)))
        for key in order
        if key in shown
    ]
    fixed = [
        FixedFilter(FILTER_LABELS[key], [context.names(key).get(value, value) for value in values])
        for key, values in hardcoded.items()
    ]
    extra_group_by = [
        group
        for group in ("journey", "broadcast", "messageTemplate", "provider")
        if chart is None or chart.allowedGroupBy is None or group in chart.allowedGroupBy
    ]
    group_by_options = [Option("", "None")] + [
        Option(group, GROUP_BY_LABELS[group]) for group in (*sorted(ALWAYS_ALLOWED_GROUP_BY), *extra_group_by)
    ]
    pairs = _query_pairs(query, window)
    granularities = [
        Option(name, "Auto" if name == "auto" else name)
        for name in GRANULARITIES
        if name == "auto" or _bucket_count(window, name) <= MAX_BUCKETS
    ]
    return PageView(
        action=f"{screen.page_base}{PATH}",
        preset=window.preset,
        presets=[
            Option("24h", "Last 24 hours"),
            Option("7d", "Last 7 days"),
            Option("30d", "Last 30 days"),
            Option("custom", "Custom"),
        ],
        start_input=f"{window.start:%Y-%m-%dT%H:%M}",
        end_input=f"{window.end:%Y-%m-%dT%H:%M}",
        granularity=query.granularity,
        granularities=granularities,
        resolved_granularity=window.granularity,
        group_by=query.groupBy or "",
        group_by_options=group_by_options,
        display=query.display,
        controls=controls,
        fixed=fixed,
        count_link=_link(screen, PATH, [*pairs, ("display", "count")]),
        percent_link=_link(screen, PATH, [*pairs, ("display", "percent")]),
        download_link=_link(screen, f"{PATH}/download", pairs),
        download_name=f"analysis-{window.start:%Y-%m-%d}-{window.end:%Y-%m-%d}.csv",
        deliveries_link=deliveries_link(screen, result.filters, None, None, window.start, window.end),
        series=result.series,
    )


def _query_pairs(query: ChartQuery, window: Window) -> list[tuple[str, str]]:
    """The query as link parameters, without `display`; a preset stays relative to now."""
    pairs: list[tuple[str, str]] = [("range", window.preset)]
    if window.preset == "custom":
        pairs += [("startDate", iso_ms(window.start)), ("endDate", iso_ms(window.end))]
    pairs.append(("granularity", query.granularity))
    if query.groupBy:
        pairs.append(("groupBy", query.groupBy))
    for key in FILTER_KEYS:
        pairs += [(key, value) for value in getattr(query, key)]
    return pairs


def _link(screen: Screen, path: str, pairs: Sequence[tuple[str, str]]) -> str:
    return f"{screen.page(path)}&{urlencode(pairs)}" if pairs else screen.page(path)


def _bucket_count(window: Window, granularity: str) -> int:
    return math.ceil((window.end - window.start) / granularity_step(granularity)) + 1


def _chart_title(result: ChartResult) -> str:
    grouping = f" by {GROUP_BY_LABELS[result.query.groupBy].lower()}" if result.query.groupBy else ""
    unit = " (% of each period)" if result.query.display == "percent" else ""
    return (
        f"Messages sent{grouping}{unit}, {result.window.start:%Y-%m-%d %H:%M} to"
        f" {result.window.end:%Y-%m-%d %H:%M} UTC, per {result.window.granularity}"
    )


@dataclass(frozen=True)
class SummaryItem:
    key: str
    label: str
    value: int
    rate: str | None


def _summary_view(numbers: Mapping[str, int], channel: str | None) -> list[SummaryItem]:
    """The numbers the engine computes for the channel, each after `sent` with its rate of sent."""
    sent = numbers["sent"]
    items = []
    for key in SUMMARY_FIELDS.get(channel, ("sent",)):
        rate = None if key == "sent" or not sent else f"{100 * numbers[key] / sent:.1f}%"
        items.append(SummaryItem(key, SUMMARY_LABELS[key], numbers[key], rate))
    return items


@dataclass(frozen=True)
class TableCell:
    text: str
    href: str | None


@dataclass(frozen=True)
class TableRow:
    bucket: datetime
    cells: list[TableCell]


def _table_rows(result: ChartResult) -> list[TableRow]:
    """The series as a table (one row per bucket with messages), each number linking to its
    deliveries: the chart's accessible twin."""
    percent = result.query.display == "percent"
    values = [item.values(result.query.display) for item in result.series]
    rows = []
    for position, bucket in enumerate(result.buckets):
        if not any(item.counts[position] for item in result.series):
            continue
        cells = [
            TableCell(
                format_value(series_values[position], percent),
                item.point_hrefs[position] if item.point_hrefs else None,
            )
            for item, series_values in zip(result.series, values, strict=True)
        ]
        rows.append(TableRow(bucket, cells))
    return rows
