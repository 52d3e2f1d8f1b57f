"""The server-side SVG time-series renderer: well-formed SVG with a line and a point per bucket for
each series, dated axes, a legend, links followed through htmx, and no user text left unescaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from markupsafe import Markup

from components.svg_chart import Series, TimeSeriesChart, render_svg, time_format, y_axis_top

SVG = "{http://www.w3.org/2000/svg}"
HOURS = [datetime(2026, 3, 2, 10, tzinfo=UTC) + timedelta(hours=index) for index in range(4)]
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "Tom & Jerry's </svg><svg onload=alert(1)>",
]


def parse(svg: Markup) -> ET.Element:
    return ET.fromstring(str(svg))  # noqa: S314 - the renderer's own output, under test


def test_each_series_is_a_line_with_a_point_per_bucket_and_a_legend_entry() -> None:
    chart = TimeSeriesChart(
        "Messages sent",
        HOURS,
        [Series("Email", [3, 0, 7, 1]), Series("Sms", [1, 1, 0, 2])],
    )
    root = parse(render_svg(chart))
    assert root.tag == f"{SVG}svg"
    assert root.findtext(f"{SVG}title") == "Messages sent"
    lines = root.findall(f".//{SVG}polyline")
    assert len(lines) == 2
    assert [len(line.attrib["points"].split()) for line in lines] == [4, 4]
    values = [point.attrib["data-value"] for point in root.iter(f"{SVG}circle")]
    assert values == ["3", "0", "7", "1", "1", "1", "0", "2"]
    legend = [
        entry.findtext(f"{SVG}text")
        for entry in root.iter(f"{SVG}g")
        if "fg-legend-entry" in entry.get("class", "")
    ]
    assert legend == ["Email", "Sms"]
    # A tooltip per point names the series, the bucket and the value.
    assert root.find(f".//{SVG}circle/{SVG}title").text == "Email · 2026-03-02 10:00 UTC: 3"  # type: ignore[union-attr]


def test_axes_have_round_ticks_and_dates() -> None:
    chart = TimeSeriesChart("t", HOURS, [Series("Email", [3, 0, 7, 1])])
    assert y_axis_top(chart) == 8
    texts = [text.text for text in parse(render_svg(chart)).iter(f"{SVG}text")]
    assert [text for text in texts if text and text.isdigit()] == ["0", "2", "4", "6", "8"]
    tspans = [span.text for span in parse(render_svg(chart)).iter(f"{SVG}tspan")]
    assert tspans == ["10:00", "11:00", "12:00", "13:00"]
    days = [datetime(2026, 3, day, tzinfo=UTC) for day in range(1, 4)]
    assert time_format(days) == "%Y-%m-%d"
    late = datetime(2026, 3, 2, 23, tzinfo=UTC)
    assert time_format([late, late + timedelta(hours=1)]) == "%m-%d %H:%M"

    percent = TimeSeriesChart("t", HOURS, [Series("Email", [50.0, 100.0, 0.0, 12.5])], percent=True)
    assert y_axis_top(percent) == 100
    assert "100.0%" in [text.text for text in parse(render_svg(percent)).iter(f"{SVG}text")]


def test_links_are_followed_with_htmx_and_escaped() -> None:
    href = "/dashboard-l/embedded/deliveries/v2?workspaceId=w&channels=Email"
    chart = TimeSeriesChart(
        "t", HOURS[:2], [Series("Email", [1, 2], href=href, point_hrefs=[href + "&p=1", None])]
    )
    svg = str(render_svg(chart))
    root = parse(render_svg(chart))
    linked = [element for element in root.iter() if "hx-get" in element.attrib]
    # The line, the first point and the legend entry; never an SVG <a href>, which htmx does not boost.
    assert [element.attrib["hx-get"] for element in linked] == [href, href + "&p=1", href]
    assert all(element.attrib["hx-target"] == "body" for element in linked)
    assert "&amp;channels=Email" in svg
    assert root.find(f".//{SVG}a") is None


def test_no_user_text_is_left_unescaped() -> None:
    chart = TimeSeriesChart(
        HOSTILE[0],
        HOURS[:2],
        [Series(label, [1, 2], href=f"/x?label={label}") for label in HOSTILE],
    )
    rendered = render_svg(chart)
    svg = str(rendered)
    for marker in ("<script", "<img", "<svg onload", "</svg><", "onerror=alert(1)>"):
        assert marker not in svg, marker
    root = parse(rendered)  # one well-formed document: nothing broke out of its element or attribute
    assert [
        element.tag for element in root.iter() if element.tag.endswith(("script", "img", "foreignObject"))
    ] == []
    # The text reads as it was written.
    titles = [
        entry.findtext(f"{SVG}title")
        for entry in root.iter(f"{SVG}g")
        if "fg-legend-entry" in entry.get("class", "")
    ]
    assert titles == HOSTILE
    assert root.findtext(f"{SVG}title") == HOSTILE[0]
    assert [element.attrib["hx-get"] for element in root.iter(f"{SVG}polyline")] == [
        f"/x?label={label}" for label in HOSTILE
    ]


def test_long_labels_are_shortened_in_the_legend_and_kept_whole_in_its_title() -> None:
    label = "A journey with a very long name indeed, longer than the legend"
    root = parse(render_svg(TimeSeriesChart("t", HOURS[:1], [Series(label, [4])])))
    [entry] = [entry for entry in root.iter(f"{SVG}g") if "fg-legend-entry" in entry.get("class", "")]
    assert entry.findtext(f"{SVG}title") == label
    shown = entry.findtext(f"{SVG}text")
    assert shown is not None and shown.endswith("…") and len(shown) < len(label)


def test_an_empty_chart_says_so() -> None:
    root = parse(render_svg(TimeSeriesChart("t", HOURS, [])))
    assert [text.text for text in root.iter(f"{SVG}text") if "fg-chart-empty" in text.get("class", "")] == [
        "No messages in this range"
    ]
    assert root.find(f".//{SVG}circle") is None
