"""The analysis chart's data: its query (read, windowed and restricted by the AnalysisChart
configuration), the series from the engine, their labels and their drill-down links."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from components.screens import Screen
from engine import analysis, component_configurations, configuration_enforcement
from engine.broadcasts.resources import list_broadcasts
from engine.component_configurations import (
    FILTER_KEYS,
    AnalysisChartDefinition,
)
from engine.errors import InvalidInput
from engine.journeys.resources import list_journeys
from engine.resources import ResourceIndexRequest, iso_ms, resource_index
from engine.sent_messages import SentFilter
from gateway.api.analysis import Granularity
from gateway.api.deliveries import Channel
from gateway.deps import in_read_transaction
from gateway.embed_policy import check_resource_ids
from gateway.inputs import validate
from gateway.query_strings import DateText

PATH = "/analysis-chart"
DELIVERIES_PATH = "/deliveries/v2"
RangePreset = Literal["24h", "7d", "30d", "custom"]
Display = Literal["count", "percent"]
PRESETS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_PRESET: RangePreset = "7d"
GRANULARITIES: tuple[str, ...] = ("auto", *analysis.GRANULARITIES)
CHANNELS: tuple[str, ...] = ("Email", "Sms", "MobilePush", "Webhook")
MESSAGE_STATES: tuple[str, ...] = ("sent", "delivered", "opened", "clicked", "bounced")
STATE_LABELS = {state: state.capitalize() for state in MESSAGE_STATES}
GROUP_BY_LABELS: dict[str, str] = {
    "channel": "Channel",
    "messageState": "Message state",
    "journey": "Journey",
    "broadcast": "Broadcast",
    "messageTemplate": "Template",
    "provider": "Provider",
}
# The series of a message without the grouped property (a broadcast's message grouped by journey).
NO_GROUP_LABELS: dict[str, str] = {
    "journey": "No journey",
    "broadcast": "No broadcast",
    "messageTemplate": "No template",
    "provider": "No provider",
    "channel": "No channel",
}
# A state a message reached, as the current statuses of the deliveries screen that imply it. The
# deliveries table filters on the latest status, so this is the closest drill-down it can show.
STATE_STATUSES: dict[str, tuple[str, ...]] = {
    "sent": (),
    "delivered": ("DFEmailDelivered", "DFSmsDelivered", "DFEmailOpened", "DFEmailClicked"),
    "opened": ("DFEmailOpened", "DFEmailClicked"),
    "clicked": ("DFEmailClicked",),
    "bounced": ("DFEmailBounced", "DFSmsFailed"),
}
# The group-bys whose series the deliveries search can select.
LINKED_GROUP_BY = frozenset({"channel", "messageState", "journey", "broadcast", "messageTemplate"})
# The summary numbers engine.analysis computes for a channel (the others stay 0).
SUMMARY_FIELDS: dict[str | None, tuple[str, ...]] = {
    "Email": ("sent", "deliveries", "opens", "clicks", "bounces"),
    "Sms": ("sent", "deliveries", "bounces"),
}
SUMMARY_LABELS = {
    "sent": "Sent",
    "deliveries": "Delivered",
    "opens": "Opened",
    "clicks": "Clicked",
    "bounces": "Bounced",
}
FILTER_LABELS = {
    "channels": "Channels",
    "messageStates": "Message states",
    "templateIds": "Templates",
    "journeyIds": "Journeys",
    "broadcastIds": "Broadcasts",
    "providers": "Providers",
    "userIds": "User ids",
}
# Beyond these, a chart is unreadable and its SVG large: pick a coarser granularity.
MAX_BUCKETS = 2000
# Groups drawn as their own line; the rest are summed into one "Other" line.
MAX_SERIES = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A custom range stays inside what ClickHouse's DateTime64 holds (and far from datetime's limits).
EARLIEST = _EPOCH
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_UNITS = {"SECOND": "seconds", "MINUTE": "minutes", "HOUR": "hours", "DAY": "days"}


class ChartQuery(BaseModel):
    """The screen's query string; empty form fields were dropped before validation."""

    model_config = ConfigDict(extra="ignore")

    range: RangePreset | None = None
    startDate: DateText | None = None
    endDate: DateText | None = None
    granularity: Granularity = "auto"
    groupBy: analysis.GroupBy | None = None
    display: Display = "count"
    journeyIds: list[str] = []
    broadcastIds: list[str] = []
    channels: list[Channel] = []
    providers: list[str] = []
    messageStates: list[analysis.MessageState] = []
    templateIds: list[str] = []
    userIds: list[str] = []

    def asked_filters(self) -> dict[str, list[str]]:
        return {key: list(getattr(self, key)) for key in FILTER_KEYS}


@dataclass(frozen=True)
class Window:
    """The time range shown, and its buckets."""

    preset: RangePreset
    start: datetime
    end: datetime
    granularity: str
    step: timedelta


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class ChartContext:
    """What the screen reads from SQL: the configuration it is held to, and the pickers' choices."""

    chart: AnalysisChartDefinition | None
    journeys: list[Option]
    broadcasts: list[Option]
    templates: list[Option]

    def names(self, key: str) -> dict[str, str]:
        """Id → name of the resources a filter key (or group-by) names."""
        options = {
            "journeyIds": self.journeys,
            "journey": self.journeys,
            "broadcastIds": self.broadcasts,
            "broadcast": self.broadcasts,
            "templateIds": self.templates,
            "messageTemplate": self.templates,
        }.get(key, [])
        return {option.value: option.label for option in options}


@dataclass(frozen=True)
class SeriesData:
    """One group's counts per bucket and their shares (percent) of each bucket's total."""

    key: str | None
    label: str
    counts: list[int]
    shares: list[float]
    href: str | None = None
    point_hrefs: list[str | None] = field(default_factory=list)

    def values(self, display: Display) -> list[float]:
        return list(self.shares) if display == "percent" else [float(count) for count in self.counts]


@dataclass(frozen=True)
class ChartResult:
    query: ChartQuery
    window: Window
    context: ChartContext
    filters: dict[str, list[str]]
    buckets: list[datetime]
    series: list[SeriesData]
    # The summary numbers and the channel they are for, when asked of `read_chart`.
    summary: Mapping[str, int] | None = None
    summary_channel: str | None = None


# -- reading and enforcing the query -----------------------------------------------------------------


def read_chart_query(request: Request) -> ChartQuery:
    """The query string as a ChartQuery: filter keys collect every value, other keys take the last;
    blank values (an untouched form field) count as absent."""
    data: dict[str, Any] = {}
    for key in request.query_params:
        name = key.removesuffix("[]")
        values = [value.strip() for value in request.query_params.getlist(key) if value.strip()]
        if name in FILTER_KEYS:
            data[name] = [*data.get(name, []), *values]
        elif values:
            data[name] = values[-1]
    return validate(ChartQuery, data, where="querystring")


def resolve_window(query: ChartQuery, now: datetime) -> Window:
    """The range a query asks for, and its granularity (`auto` resolved as chart data resolves it).

    :raises InvalidInput: a custom range without both dates, or ending before it starts, or a
        granularity that would draw more than MAX_BUCKETS points.
    """
    preset: RangePreset = query.range or ("custom" if query.startDate or query.endDate else DEFAULT_PRESET)
    if preset == "custom":
        for name in ("startDate", "endDate"):
            if getattr(query, name) is None:
                raise InvalidInput(
                    f"querystring/{name} is required for a custom range", field=f"querystring/{name}"
                )
        assert query.startDate is not None and query.endDate is not None
        start, end = query.startDate, query.endDate
        for name, moment in (("startDate", start), ("endDate", end)):
            if not EARLIEST <= moment <= LATEST:
                raise InvalidInput(
                    f"querystring/{name} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}",
                    field=f"querystring/{name}",
                )
        if end <= start:
            raise InvalidInput("querystring/endDate must be after startDate", field="querystring/endDate")
    else:
        # Through the current hour's last millisecond: a range of whole hours, which analysis reads from
        # ClickHouse's hourly counts alone (engine.delivery_facts), and whose hourly buckets are whole.
        end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start, end = end - PRESETS[preset], end - timedelta(milliseconds=1)
    granularity = analysis.resolve_granularity(query.granularity, start, end)
    step = granularity_step(granularity)
    if len(bucket_starts(start, end, step, limit=MAX_BUCKETS + 1)) > MAX_BUCKETS:
        raise InvalidInput(
            f"querystring/granularity {granularity} draws more than {MAX_BUCKETS} points over this range;"
            " pick a coarser one",
            field="querystring/granularity",
        )
    return Window(preset, start, end, granularity, step)


def granularity_step(granularity: str) -> timedelta:
    length, unit = analysis.GRANULARITIES[granularity]
    return timedelta(**{_UNITS[unit]: length})


def bucket_starts(
    start: datetime, end: datetime, step: timedelta, *, limit: int | None = None
) -> list[datetime]:
    """The start of every bucket that overlaps [start, end), aligned to the epoch as ClickHouse's
    `toStartOfInterval` aligns them for the granularities offered. The range's end is inclusive, but
    a bucket starting at the very end is left out unless messages fall in it (the caller merges the
    buckets chart data answers): drawn empty, it would look like a drop to zero."""
    bucket = _EPOCH + step * ((start - _EPOCH) // step)
    buckets: list[datetime] = []
    while (bucket < end or not buckets) and (limit is None or len(buckets) < limit):
        buckets.append(bucket)
        bucket += step
    return buckets


def _restricted_filters(
    request: Request, screen: Screen, query: ChartQuery, chart: AnalysisChartDefinition | None
) -> dict[str, list[str]]:
    """The filters the chart runs with: the configuration applied, as the embedded API applies it."""
    if screen.embedded is not None:
        check_resource_ids(screen.embedded.resource_ids, request.query_params, None)
    configuration_enforcement.check_group_by(chart, query.groupBy)
    return configuration_enforcement.restrict_analysis_filters(
        chart, query.asked_filters(), where="querystring"
    )


def _read_context(session: Session, screen: Screen) -> ChartContext:
    chart = (
        component_configurations.effective_configuration(session, screen.workspace_id, "AnalysisChart")
        if screen.embedded is not None
        else None
    )
    index = resource_index(session, screen.workspace_id, ResourceIndexRequest(message_templates=True))
    allowed = screen.embedded.resource_ids if screen.embedded is not None else None

    def visible(options: list[Option]) -> list[Option]:
        return options if allowed is None else [option for option in options if option.value in allowed]

    return ChartContext(
        chart=chart,
        journeys=visible([Option(j.id, j.name) for j in list_journeys(session, screen.workspace_id)]),
        broadcasts=visible([Option(b.id, b.name) for b in list_broadcasts(session, screen.workspace_id)]),
        templates=visible([Option(t["id"], t["name"]) for t in index["messageTemplates"]]),
    )


def analysis_filter(window: Window, filters: Mapping[str, Sequence[str]]) -> analysis.AnalysisFilter:
    sent = SentFilter(
        journey_ids=filters["journeyIds"],
        broadcast_ids=filters["broadcastIds"],
        user_ids=filters["userIds"],
        channels=filters["channels"],
        template_ids=filters["templateIds"],
        providers=filters["providers"],
        start=window.start,
        end=window.end,
    )
    states = cast(list[analysis.MessageState], list(filters["messageStates"]))
    return analysis.AnalysisFilter(sent=sent, message_states=states)


async def read_chart(request: Request, screen: Screen, *, with_summary: bool = False) -> ChartResult:
    """The chart's query, enforced, and its series; `with_summary`: the summary numbers too, read at
    the same time as the series."""
    query = read_chart_query(request)
    window = resolve_window(query, datetime.now(UTC))
    context = await in_read_transaction(request, lambda session: _read_context(session, screen))
    filters = _restricted_filters(request, screen, query, context.chart)
    where = analysis_filter(window, filters)
    store = request.app.state.event_store
    channel = configuration_enforcement.summary_channel(None, filters["channels"])
    reading = run_in_threadpool(
        lambda: analysis.chart_data(
            store, screen.workspace_id, where, granularity=window.granularity, group_by=query.groupBy
        )
    )
    summary: Mapping[str, int] | None = None
    if with_summary and channel is None:
        data = await reading
        summary = analysis.summary_of_chart(data, query.groupBy)["summary"]
    elif with_summary:
        data, numbers = await asyncio.gather(
            reading,
            run_in_threadpool(lambda: analysis.summary(store, screen.workspace_id, where, channel=channel)),
        )
        summary = numbers["summary"]
    else:
        data = await reading
    buckets = bucket_starts(window.start, window.end, window.step)
    buckets = sorted({*buckets, *(_parse_time(point["timestamp"]) for point in data["data"])})
    series = build_series(data["data"], buckets, query.groupBy, _group_labels(query.groupBy, context))
    periods = _bucket_periods(buckets, window)
    linked = [_with_links(screen, item, periods, window, filters, query.groupBy) for item in series]
    return ChartResult(query, window, context, filters, buckets, linked, summary, channel)


# -- shaping the series ------------------------------------------------------------------------------


def build_series(
    points: Sequence[Mapping[str, Any]],
    buckets: Sequence[datetime],
    group_by: str | None,
    labels: Mapping[str, str],
) -> list[SeriesData]:
    """Chart-data points as one series per group over every bucket (0 where nothing was sent).

    Message states come in their natural order; other groups by their total, largest first, the
    ones beyond MAX_SERIES summed into "Other". Shares are of each bucket's total: the messages sent
    in it when grouped by message state (every message counts once per state it reached), else the
    sum of the groups.
    """
    position = {bucket: index for index, bucket in enumerate(buckets)}
    counts: dict[str, list[int]] = {}
    for point in points:
        key = str(point.get("groupKey", ""))
        row = counts.setdefault(key, [0] * len(buckets))
        row[position[_parse_time(point["timestamp"])]] += int(point["count"])
    groups: list[tuple[str | None, list[int]]]
    if group_by == "messageState":
        totals = counts.get("sent", [0] * len(buckets))
        groups = [(state, counts[state]) for state in MESSAGE_STATES if state in counts]
    else:
        totals = [sum(row[index] for row in counts.values()) for index in range(len(buckets))]
        ordered = sorted(counts, key=lambda key: (-sum(counts[key]), key))
        other: list[int] | None = None
        if len(ordered) > MAX_SERIES:
            rest = ordered[MAX_SERIES - 1 :]
            other = [sum(counts[key][index] for key in rest) for index in range(len(buckets))]
            ordered = ordered[: MAX_SERIES - 1]
        groups = [(key, counts[key]) for key in ordered]
        if other is not None:
            groups.append((None, other))
    series = []
    for group, row in groups:
        shares = [100.0 * count / total if total else 0.0 for count, total in zip(row, totals, strict=True)]
        if group is None:
            series.append(SeriesData(None, "Other", row, shares))
        elif group_by is None:
            series.append(SeriesData(None, "Messages sent", row, shares))
        else:
            label = labels.get(group) or (group if group else NO_GROUP_LABELS.get(group_by, "None"))
            series.append(SeriesData(group, label, row, shares))
    return series


def _group_labels(group_by: str | None, context: ChartContext) -> dict[str, str]:
    if group_by == "messageState":
        return dict(STATE_LABELS)
    return context.names(group_by or "")


def _bucket_periods(buckets: Sequence[datetime], window: Window) -> list[str]:
    """The deliveries screen's time range (`period_part`) of each bucket, within the window."""
    periods = []
    for index, bucket in enumerate(buckets):
        bucket_end = buckets[index + 1] if index + 1 < len(buckets) else bucket + window.step
        start = max(bucket, window.start)
        periods.append(period_part(start, min(bucket_end - timedelta(milliseconds=1), window.end)))
    return periods


def _with_links(
    screen: Screen,
    item: SeriesData,
    periods: Sequence[str],
    window: Window,
    filters: Mapping[str, Sequence[str]],
    group_by: str | None,
) -> SeriesData:
    """The series with its drill-down links: the whole window for the line, each bucket's period (of
    `periods`) for a point. A series the deliveries search cannot select (Other, messages without
    the grouped property, a provider) has none: its link would show other messages too."""
    if group_by is not None and (not item.key or group_by not in LINKED_GROUP_BY):
        return item
    link = deliveries_links(screen, filters, group_by, item.key)
    point_hrefs: list[str | None] = [link(period) for period in periods]
    whole = link(period_part(window.start, window.end))
    return SeriesData(item.key, item.label, item.counts, item.shares, whole, point_hrefs)


def period_part(start: datetime, end: datetime) -> str:
    """The query part of a deliveries screen link giving its time range."""
    return urlencode([("startDate", iso_ms(start)), ("endDate", iso_ms(end))])


def deliveries_link(
    screen: Screen,
    filters: Mapping[str, Sequence[str]],
    group_by: str | None,
    key: str | None,
    start: datetime,
    end: datetime,
) -> str:
    """The deliveries screen showing the messages behind a series (or one of its points)."""
    return deliveries_links(screen, filters, group_by, key)(period_part(start, end))


def deliveries_links(
    screen: Screen, filters: Mapping[str, Sequence[str]], group_by: str | None, key: str | None
) -> Callable[[str], str]:
    """The link to the deliveries screen showing the messages behind a series in a time range (given
    by its `period_part`), in the deliveries API's parameter names. A filter the deliveries search
    cannot express (providers; several journeys or broadcasts) is left out: the table then shows a
    wider set, never a narrower. A message state becomes the current statuses that imply it
    (STATE_STATUSES)."""
    channels = list(filters["channels"])
    templates = list(filters["templateIds"])
    journeys = list(filters["journeyIds"])
    broadcasts = list(filters["broadcastIds"])
    states = list(filters["messageStates"])
    if key:
        if group_by == "channel":
            channels = [key]
        elif group_by == "messageTemplate":
            templates = [key]
        elif group_by == "journey":
            journeys = [key]
        elif group_by == "broadcast":
            broadcasts = [key]
        elif group_by == "messageState":
            states = [key]
    pairs: list[tuple[str, str]] = [("channels", channel) for channel in channels]
    pairs += [("templateIds", template) for template in templates]
    if len(journeys) == 1:
        pairs.append(("journeyId", journeys[0]))
    if len(broadcasts) == 1:
        pairs.append(("broadcastId", broadcasts[0]))
    pairs += [("userId", user) for user in filters["userIds"]]
    if states and all(STATE_STATUSES[state] for state in states):
        statuses = dict.fromkeys(status for state in states for status in STATE_STATUSES[state])
        pairs += [("statuses", status) for status in statuses]
    page = screen.page(DELIVERIES_PATH)
    rest = f"&{urlencode(pairs)}" if pairs else ""

    def link(period: str) -> str:
        return f"{page}&{period}{rest}"

    return link


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
