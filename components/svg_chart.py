"""A small server-side SVG time-series renderer: one line per series over shared time buckets, a
y axis with round ticks, an x axis with dates (UTC), a legend, and a tooltip (`<title>`) per point.

Every piece of text that reaches the SVG (labels, titles, links) passes through `markupsafe.escape`,
so a series named `<script>` is drawn as text; the result is `Markup` and a template includes it
without `|safe`. Colours are presentation attributes, overridden by the `fg-series-N` classes where
a stylesheet themes them.

A series or a point may carry a link. It is followed with htmx (`hx-get` into the body, as a boosted
link is), not with an SVG `<a href>`: htmx boosts only HTML anchors, and an embedded page must send its
session token header on every navigation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

PALETTE = (
    "#1565c0",
    "#2e7d32",
    "#ef6c00",
    "#6a1b9a",
    "#c62828",
    "#00838f",
    "#5d4037",
    "#ad1457",
    "#827717",
    "#37474f",
)
LEGEND_LABEL_CHARS = 26


@dataclass(frozen=True)
class Series:
    """One line: a value per bucket of the chart, optionally a link for the line and for each point."""

    label: str
    values: Sequence[float]
    href: str | None = None
    point_hrefs: Sequence[str | None] = ()


@dataclass(frozen=True)
class TimeSeriesChart:
    """Buckets (their start times, ascending) and the series drawn over them."""

    title: str
    buckets: Sequence[datetime]
    series: Sequence[Series]
    percent: bool = False


@dataclass(frozen=True)
class Layout:
    width: int = 800
    plot_height: int = 260
    margin_left: int = 56
    margin_right: int = 20
    margin_top: int = 16
    axis_height: int = 40
    legend_row_height: int = 20
    legend_column_width: int = 190

    @property
    def plot_width(self) -> int:
        return self.width - self.margin_left - self.margin_right


def render_svg(chart: TimeSeriesChart, layout: Layout | None = None) -> Markup:
    """The chart as one `<svg>` element (scales with its container's width)."""
    layout = layout or Layout()
    columns = max(1, (layout.width - layout.margin_left) // layout.legend_column_width)
    legend_rows = math.ceil(len(chart.series) / columns) if chart.series else 0
    legend_top = layout.margin_top + layout.plot_height + layout.axis_height
    height = legend_top + legend_rows * layout.legend_row_height + 8
    top = y_axis_top(chart)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fg-chart" role="img" viewBox="0 0 {layout.width}'
        f' {height}" width="100%" preserveAspectRatio="xMidYMid meet" aria-labelledby="fg-chart-title">',
        f'<title id="fg-chart-title">{escape(chart.title)}</title>',
        _y_axis(layout, top, chart.percent),
        _x_axis(layout, chart.buckets),
    ]
    if not chart.buckets or not chart.series:
        parts.append(
            f'<text class="fg-chart-empty" x="{layout.margin_left + layout.plot_width / 2:.1f}"'
            f' y="{layout.margin_top + layout.plot_height / 2:.1f}" text-anchor="middle"'
            ' fill="#616e7c">No messages in this range</text>'
        )
    # What every series shares: each bucket's x and time as its tooltip writes it.
    xs = [_x_of(layout, position, len(chart.buckets)) for position in range(len(chart.buckets))]
    times = [bucket.strftime("%Y-%m-%d %H:%M UTC") for bucket in chart.buckets]
    for index, series in enumerate(chart.series):
        parts.append(_series(layout, chart, series, index, top, xs, times))
    for index, series in enumerate(chart.series):
        row, column = divmod(index, columns)
        x = layout.margin_left + column * layout.legend_column_width
        y = legend_top + row * layout.legend_row_height
        parts.append(_legend_entry(series, index, x, y))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text went through escape()


def y_axis_top(chart: TimeSeriesChart) -> float:
    """The value at the top of the y axis: 100 for percentages, else a round number ≥ the largest."""
    if chart.percent:
        return 100.0
    largest = max((value for series in chart.series for value in series.values), default=0.0)
    step = _round_step(largest / 4) if largest > 0 else 1.0
    return max(step * math.ceil(largest / step), step)


def time_format(buckets: Sequence[datetime]) -> str:
    """How the x axis writes a bucket: with the time when buckets are shorter than a day."""
    if len(buckets) < 2:
        return "%Y-%m-%d %H:%M"
    step = buckets[1] - buckets[0]
    if step >= timedelta(days=1):
        return "%Y-%m-%d"
    if buckets[-1].date() == buckets[0].date():
        return "%H:%M"
    return "%m-%d %H:%M"


def format_value(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.1f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


# -- pieces -------------------------------------------------------------------------------------------


def _round_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw` (and at least 1: counts are whole)."""
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return max(1.0, float(factor * magnitude))
    return max(1.0, float(10 * magnitude))


def _x_of(layout: Layout, index: int, count: int) -> float:
    if count <= 1:
        return layout.margin_left + layout.plot_width / 2
    return layout.margin_left + layout.plot_width * index / (count - 1)


def _y_of(layout: Layout, value: float, top: float) -> float:
    share = min(max(value / top, 0.0), 1.0) if top else 0.0
    return layout.margin_top + layout.plot_height * (1 - share)


def _y_axis(layout: Layout, top: float, percent: bool) -> str:
    left, right = layout.margin_left, layout.margin_left + layout.plot_width
    parts = ['<g class="fg-axis fg-axis-y" font-size="11" fill="#616e7c">']
    for tick in range(5):
        value = top * tick / 4
        y = _y_of(layout, value, top)
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9e2ec" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_value(value, percent))}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _x_axis(layout: Layout, buckets: Sequence[datetime]) -> str:
    baseline = layout.margin_top + layout.plot_height
    parts = [
        '<g class="fg-axis fg-axis-x" font-size="11" fill="#616e7c">',
        f'<line x1="{layout.margin_left}" x2="{layout.margin_left + layout.plot_width}" y1="{baseline}"'
        f' y2="{baseline}" stroke="#616e7c" stroke-width="1"/>',
    ]
    pattern = time_format(buckets)
    every = max(1, math.ceil(len(buckets) / 6))
    for index in range(0, len(buckets), every):
        x = _x_of(layout, index, len(buckets))
        label = buckets[index].strftime(pattern)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{baseline}" y2="{baseline + 4}" stroke="#616e7c"/>'
            f'<text x="{x:.1f}" y="{baseline + 18}" text-anchor="middle">'
            f'<tspan data-time="{escape(buckets[index].isoformat())}">{escape(label)}</tspan></text>'
        )
    parts.append(
        f'<text x="{layout.margin_left + layout.plot_width}" y="{baseline + 34}" text-anchor="end">UTC</text>'
    )
    parts.append("</g>")
    return "".join(parts)


def _link_attributes(href: str | None) -> str:
    if not href:
        return ""
    escaped = escape(href)
    return (
        f' role="link" tabindex="0" hx-get="{escaped}" hx-target="body" hx-push-url="true"'
        f' hx-trigger="click, keyup[key==&#39;Enter&#39;]" data-href="{escaped}" cursor="pointer"'
    )


def _series(
    layout: Layout,
    chart: TimeSeriesChart,
    series: Series,
    index: int,
    top: float,
    xs: Sequence[float],
    times: Sequence[str],
) -> str:
    """The series' line and points, at the buckets' `xs`, with `times` in their tooltips."""
    color = PALETTE[index % len(PALETTE)]
    coordinates = [(x, _y_of(layout, value, top)) for x, value in zip(xs, series.values, strict=False)]
    parts = [f'<g class="fg-series fg-series-{index % len(PALETTE)}" data-series="{index}">']
    if len(coordinates) > 1:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"'
            f"{_link_attributes(series.href)}><title>{escape(series.label)}</title></polyline>"
        )
    label = escape(series.label)
    for position, (x, y) in enumerate(coordinates):
        value = series.values[position]
        href = series.point_hrefs[position] if position < len(series.point_hrefs) else None
        tooltip = f"{label} · {times[position]}: {format_value(value, chart.percent)}"
        parts.append(
            f'<circle class="fg-point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"'
            f' data-value="{value:g}"{_link_attributes(href)}><title>{tooltip}</title></circle>'
        )
    parts.append("</g>")
    return "".join(parts)


def _legend_entry(series: Series, index: int, x: int, y: int) -> str:
    color = PALETTE[index % len(PALETTE)]
    label = series.label
    shown = label if len(label) <= LEGEND_LABEL_CHARS else label[: LEGEND_LABEL_CHARS - 1] + "…"
    return (
        f'<g class="fg-legend-entry fg-series-{index % len(PALETTE)}" data-series="{index}"'
        f"{_link_attributes(series.href)}>"
        f"<title>{escape(label)}</title>"
        f'<rect x="{x}" y="{y}" width="12" height="12" rx="2" fill="{color}"/>'
        f'<text x="{x + 18}" y="{y + 10}" font-size="12" fill="#1f2933">{escape(shown)}</text>'
        "</g>"
    )
