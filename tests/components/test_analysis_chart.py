"""The analysis chart screen (`/dashboard-l/embedded/analysis-chart` and `/dashboard/analysis-chart`)
on real delivery events: the chart, summary, percent view, CSV and drill-down links show what was
sent; user-chosen names render inert; an embedded session is held to the AnalysisChart configuration
(hard-coded filters win over the query, disallowed controls are neither rendered nor accepted); a
token out of scope gets a 403, and the member console works in anonymous mode."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant, make_parent
from tests.support.delivery_events import EMAIL, SMS, DeliveryEvents

SCREEN = "/dashboard-l/embedded/analysis-chart"
START = "2026-03-02T10:00:00.000Z"
END = "2026-03-02T11:00:00.000Z"
RANGE = (("range", "custom"), ("startDate", START), ("endDate", END))
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def journey_id(client: TestClient, parent: ParentAccount, tenant: Tenant) -> str:
    """A journey of the tenant whose name is markup, and the tenant's deliveries: two Email messages
    of that journey at 10:05 (delivered, clicked) and 10:20 (bounced), and an Sms of broadcast b-1
    at 10:40 (delivered)."""
    created = client.put(
        "/api/admin/journeys",
        json={"workspaceId": tenant.id, "name": HOSTILE},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert created.status_code == 200, created.text
    journey: str = created.json()["id"]
    seed_deliveries(client, tenant.id, journey)
    return journey


def seed_deliveries(client: TestClient, workspace_id: str, journey: str) -> None:
    events = DeliveryEvents(client, workspace_id)
    for message_id, minute, variant, tags, statuses in [
        ("e1", 5, EMAIL, {"journeyId": journey}, ["DFEmailDelivered", "DFEmailClicked"]),
        ("e2", 20, EMAIL, {"journeyId": journey}, ["DFEmailBounced"]),
        ("s1", 40, SMS, {"broadcastId": "b-1"}, ["DFSmsDelivered"]),
    ]:
        moment = datetime(2026, 3, 2, 10, minute, tzinfo=UTC)
        events.sent(message_id, "ada", moment.isoformat(), template="t-1", variant=variant, tags=tags,
                    processed_at=moment)  # fmt: skip
        for status in statuses:
            events.status(status, message_id, "ada", (moment + timedelta(minutes=1)).isoformat())


def mint(client: TestClient, parent: ParentAccount, tenant: Tenant, **extra: Any) -> str:
    minted = client.post(
        "/api-l/sessions",
        json={"workspaceId": tenant.id, **extra},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert minted.status_code == 200, minted.text
    token: str = minted.json()["token"]
    return token


class Embedded:
    """The screen opened in the embed shell with one session token."""

    def __init__(self, client: TestClient, parent: ParentAccount, tenant: Tenant, **extra: Any) -> None:
        self.client, self.workspace_id = client, tenant.id
        self.token = mint(client, parent, tenant, **extra)

    def open(self, *pairs: tuple[str, str], path: str = SCREEN) -> httpx.Response:
        """The first load: the token in the query string, as the host's iframe URL carries it."""
        params = httpx.QueryParams([("token", self.token), ("workspaceId", self.workspace_id), *pairs])
        return self.client.get(path, params=params)

    def follow(self, *pairs: tuple[str, str], path: str = SCREEN) -> httpx.Response:
        """A later (htmx) request: the token in the Authorization header, never in the URL."""
        params = httpx.QueryParams([("workspaceId", self.workspace_id), *pairs])
        return self.client.get(path, params=params, headers={"authorization": f"Bearer {self.token}"})

    def page(self, *pairs: tuple[str, str]) -> str:
        response = self.open(*pairs)
        assert response.status_code == 200, response.text
        return response.text


def configure(client: TestClient, parent: ParentAccount, workspace_id: str, **definition: Any) -> None:
    response = client.put(
        "/api/admin/component-configurations",
        json={
            "workspaceId": workspace_id,
            "name": "AnalysisChart",
            "definition": {"type": "AnalysisChart", **definition},
        },
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 200, response.text


def summary(page: str) -> dict[str, int]:
    return {
        key: int(value.replace(",", ""))
        for key, value in re.findall(r'data-testid="summary-(\w+)">([\d,]+)<', page)
    }


def table(page: str) -> list[list[str]]:
    """The chart's data table: a header row, then one row per period with messages."""
    body = re.search(r'data-testid="chart-table">(.*?)</details>', page, re.S)
    assert body is not None
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def links(page: str, testid: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(rf'<a href="([^"]+)" data-testid="{testid}"', page)]


def select_options(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None, name
    return re.findall(r'<option value="([^"]*)"', select.group(1))


# -- what the chart shows ----------------------------------------------------------------------------


def test_the_embedded_chart_shows_the_seeded_deliveries(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    embedded = Embedded(client, parent, tenant)
    page = embedded.page(*RANGE, ("granularity", "30minutes"))
    assert summary(page) == {"sent": 3}
    assert table(page) == [
        ["Period start (UTC)", "Messages sent"],
        ["2026-03-02 10:00", "2"],
        ["2026-03-02 10:30", "1"],
    ]
    assert re.findall(r'<circle class="fg-point"[^>]*data-value="(\d+)"', page) == ["2", "1"]
    # The SVG draws every period of the range, zero-filled; the table lists those with messages.
    fine = embedded.page(*RANGE, ("granularity", "10minutes"))
    assert re.findall(r'<circle class="fg-point"[^>]*data-value="(\d+)"', fine) == [
        "1",
        "0",
        "1",
        "0",
        "1",
        "0",
    ]
    assert [row[0] for row in table(fine)[1:]] == ["2026-03-02 10:00", "2026-03-02 10:20", "2026-03-02 10:40"]
    assert embedded.token not in page

    email = embedded.page(*RANGE, ("channels", "Email"))
    assert summary(email) == {"sent": 2, "deliveries": 1, "opens": 1, "clicks": 1, "bounces": 1}
    assert "50.0% of sent" in email
    sms = embedded.page(*RANGE, ("channels", "Sms"))
    assert summary(sms) == {"sent": 1, "deliveries": 1, "bounces": 0}


def test_group_by_message_state_with_counts_and_percentages(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    embedded = Embedded(client, parent, tenant)
    asked = (*RANGE, ("granularity", "1hour"), ("groupBy", "messageState"), ("journeyIds", journey_id))
    assert table(embedded.page(*asked))[:2] == [
        ["Period start (UTC)", "Sent", "Delivered", "Clicked", "Bounced"],
        ["2026-03-02 10:00", "2", "1", "1", "1"],
    ]
    # A share of the period's messages: of the two sent at 10:00, one was delivered.
    percent = embedded.page(*asked, ("display", "percent"))
    assert table(percent)[1] == ["2026-03-02 10:00", "100.0%", "50.0%", "50.0%", "50.0%"]
    assert 'aria-current="true" data-testid="display-percent"' in percent

    by_channel = embedded.page(
        *RANGE, ("granularity", "1hour"), ("groupBy", "channel"), ("display", "percent")
    )
    assert table(by_channel)[:2] == [
        ["Period start (UTC)", "Email", "Sms"],
        ["2026-03-02 10:00", "66.7%", "33.3%"],
    ]


def test_user_chosen_names_render_inert(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    embedded = Embedded(client, parent, tenant)
    page = embedded.page(*RANGE, ("groupBy", "journey"))
    assert HOSTILE not in page
    assert "<img" not in page
    # The journey's name is a picker option, the legend (SVG), a series link and a table header.
    assert page.count(html.escape(HOSTILE)) >= 4
    svg = re.search(r"<svg.*?</svg>", page, re.S)
    assert svg is not None
    assert "&lt;img src=x onerror=alert(1)&gt;" in svg.group(0)
    # Only the journey's line links to deliveries: "No journey" is not a filter the table has.
    [journey_link] = links(page, "series-link")
    assert journey_link.endswith(f"journeyId={journey_id}")

    # A user id asked for is echoed in its input, escaped (and matches no one).
    asked = embedded.page(*RANGE, ("userIds", HOSTILE))
    assert "<img" not in asked
    assert f'value="{html.escape(HOSTILE)}"' in asked
    assert summary(asked) == {"sent": 0}


def test_the_series_downloads_as_csv(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    embedded = Embedded(client, parent, tenant)
    page = embedded.page(*RANGE, ("granularity", "1hour"), ("groupBy", "journey"))
    [download] = re.findall(r'<a href="([^"]+)" data-download="([^"]+)" hx-boost="false"', page)
    href, name = html.unescape(download[0]), download[1]
    assert name == "analysis-2026-03-02-2026-03-02.csv"
    assert "token" not in href
    url = urlsplit(href)
    assert url.path == f"{SCREEN}/download"
    # embed.js fetches it with the token in the header.
    response = embedded.follow(*parse_qsl(url.query)[1:], path=url.path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["timestamp", "groupKey", "groupLabel", "count", "percent"],
        ["2026-03-02T10:00:00.000Z", journey_id, HOSTILE, "2", "66.67"],
        ["2026-03-02T10:00:00.000Z", "", "No journey", "1", "33.33"],
    ]
    # Without the token the download is refused like the page.
    assert client.get(href).status_code == 401


def test_series_and_points_link_to_their_deliveries(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    embedded = Embedded(client, parent, tenant)
    page = embedded.page(*RANGE, ("granularity", "30minutes"), ("groupBy", "channel"), ("userIds", "ada"))
    email, sms = links(page, "series-link")
    url = urlsplit(email)
    assert url.path == "/dashboard-l/embedded/deliveries/v2"
    assert parse_qsl(url.query) == [
        ("workspaceId", tenant.id),
        ("startDate", START),
        ("endDate", END),
        ("channels", "Email"),
        ("userId", "ada"),
    ]
    assert ("channels", "Sms") in parse_qsl(urlsplit(sms).query)
    # A point links to its own period; the SVG follows the same links with htmx (hx-get, body).
    first_point = links(page, "drill-down")[0]
    assert parse_qsl(urlsplit(first_point).query)[1:4] == [
        ("startDate", "2026-03-02T10:00:00.000Z"),
        ("endDate", "2026-03-02T10:29:59.999Z"),
        ("channels", "Email"),
    ]
    assert f'hx-get="{html.escape(first_point)}" hx-target="body"' in page

    by_state = embedded.page(*RANGE, ("groupBy", "messageState"), ("journeyIds", journey_id))
    sent, delivered, clicked, bounced = (
        parse_qsl(urlsplit(link).query) for link in links(by_state, "series-link")
    )
    assert ("journeyId", journey_id) in sent
    assert not [pair for pair in sent if pair[0] == "statuses"]
    assert [value for key, value in clicked if key == "statuses"] == ["DFEmailClicked"]
    assert [value for key, value in bounced if key == "statuses"] == ["DFEmailBounced", "DFSmsFailed"]
    assert "token" not in " ".join(links(by_state, "series-link") + links(by_state, "drill-down"))


def test_presets_end_now(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    events = DeliveryEvents(client, tenant.id)
    now = datetime.now(UTC)
    for message_id, age in [("recent", timedelta(hours=1)), ("days-old", timedelta(days=3))]:
        moment = now - age
        events.sent(message_id, "ada", moment.isoformat(), template="t-1", variant=EMAIL, processed_at=moment)
    embedded = Embedded(client, parent, tenant)
    assert summary(embedded.page(("range", "24h"))) == {"sent": 1}
    assert summary(embedded.page(("range", "7d"))) == {"sent": 2}
    assert summary(embedded.page()) == {"sent": 2}  # 7 days unless asked
    assert summary(embedded.page(("range", "30d"), ("granularity", "1day"))) == {"sent": 2}


def test_bad_input_is_a_400_naming_the_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    embedded = Embedded(client, parent, tenant)
    for pairs, field in [
        ((("range", "custom"), ("endDate", END)), "startDate"),
        ((("range", "custom"), ("startDate", END), ("endDate", START)), "endDate"),
        ((("startDate", "soon"), ("endDate", END)), "startDate"),
        ((("startDate", "1900-01-01"), ("endDate", END)), "startDate"),
        ((("range", "1y"),), "range"),
        ((("range", "30d"), ("granularity", "30second")), "granularity"),
        ((("granularity", "2minutes"),), "granularity"),
        ((("groupBy", "user"),), "groupBy"),
        ((("channels", "Fax"),), "channels"),
        ((("messageStates", "read"),), "messageStates"),
        ((("display", "pie"),), "display"),
    ]:
        response = embedded.open(*pairs)
        assert response.status_code == 400, (pairs, response.text)
        assert f"querystring/{field}" in html.unescape(response.text), (pairs, response.text)


# -- the AnalysisChart configuration, enforced when embedded -----------------------------------------


def test_a_hardcoded_filter_changes_the_numbers_whatever_the_query_asks(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    # Set on the parent: the child, having none of its own, inherits it.
    configure(client, parent, parent.id, hardcodedFilters={"journeyIds": [journey_id]})
    embedded = Embedded(client, parent, tenant)

    asked_other = embedded.page(*RANGE, ("journeyIds", "j-2"))
    assert summary(asked_other) == {"sent": 2}
    assert summary(embedded.page(*RANGE)) == {"sent": 2}
    assert summary(embedded.page(*RANGE, ("broadcastIds", "b-1"))) == {"sent": 0}
    # The CSV is held to it too.
    download = embedded.follow(
        *RANGE, ("granularity", "1hour"), ("journeyIds", "j-2"), path=f"{SCREEN}/download"
    )
    assert [row[3] for row in csv.reader(io.StringIO(download.text))][1:] == ["2"]
    # Shown as fixed (by the journey's name, escaped), not as a control; drill-downs carry it.
    assert 'data-testid="fixed-filters"' in asked_other
    assert f"Journeys: {html.escape(HOSTILE)}" in asked_other
    assert 'data-filter="journeyIds"' not in asked_other
    assert ("journeyId", journey_id) in parse_qsl(urlsplit(links(asked_other, "all-deliveries")[0]).query)

    # The member console is not held to an embed configuration: it shows what was asked.
    seed_deliveries(client, parent.id, journey_id)  # anonymous mode opens the first workspace
    console = client.get(
        "/dashboard/analysis-chart", params=httpx.QueryParams([*RANGE, ("journeyIds", "j-2")])
    )
    assert console.status_code == 200, console.text
    assert summary(console.text) == {"sent": 0}
    assert 'data-testid="fixed-filters"' not in console.text


def test_disallowed_controls_are_not_rendered_and_are_refused(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    configure(
        client,
        parent,
        tenant.id,
        allowedGroupBy=["journey"],
        allowedFilters=["channels", "messageStates"],
        allowedChannels=["Sms"],
    )
    embedded = Embedded(client, parent, tenant)
    page = embedded.page(*RANGE)
    assert select_options(page, "groupBy") == ["", "channel", "messageState", "journey"]
    assert re.findall(r'data-filter="(\w+)"', page) == ["channels", "messageStates"]
    assert re.findall(r'name="channels" value="(\w+)"', page) == ["Sms"]
    assert 'name="userIds"' not in page
    # A request naming no channel is narrowed to the allowed ones: the Sms message alone.
    assert summary(page) == {"sent": 1, "deliveries": 1, "bounces": 0}
    assert table(embedded.page(*RANGE, ("groupBy", "channel")))[0] == ["Period start (UTC)", "Sms"]

    for pairs, field in [
        ((("groupBy", "provider"),), "groupBy"),
        ((("userIds", "ada"),), "userIds"),
        ((("channels", "Email"),), "channels"),
    ]:
        for response in (
            embedded.open(*RANGE, *pairs),
            embedded.follow(*RANGE, *pairs, path=f"{SCREEN}/download"),
        ):
            assert response.status_code == 403, (pairs, response.text)
            assert f"querystring/{field} " in html.unescape(response.text)


def test_a_session_naming_resources_may_not_filter_on_others(
    client: TestClient, parent: ParentAccount, tenant: Tenant, journey_id: str
) -> None:
    embedded = Embedded(client, parent, tenant, resourceIds=[journey_id])
    assert embedded.open(*RANGE, ("journeyIds", journey_id)).status_code == 200
    refused = embedded.open(*RANGE, ("journeyIds", "00000000-0000-4000-8000-000000000000"))
    assert refused.status_code == 403


# -- who may open it ---------------------------------------------------------------------------------


def test_a_token_out_of_scope_is_a_403_and_no_token_a_401(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    elsewhere = Embedded(client, parent, tenant, components=["DeliveriesTable"])
    for path in (SCREEN, f"{SCREEN}/download"):
        assert elsewhere.open(*RANGE, path=path).status_code == 403
        assert elsewhere.follow(*RANGE, path=path).status_code == 403
        assert client.get(path, params={"workspaceId": tenant.id}).status_code == 401
    scoped = Embedded(client, parent, tenant, components=["AnalysisChart"])
    assert scoped.open(*RANGE).status_code == 200
    other = make_parent(client, "Other SaaS").put_child("Tenant B", "tenant-b")
    mismatched = scoped.client.get(SCREEN, params={"token": scoped.token, "workspaceId": other.id})
    assert mismatched.status_code == 403


def test_the_console_works_in_anonymous_mode(client: TestClient, parent: ParentAccount) -> None:
    seed_deliveries(client, parent.id, "j-1")
    response = client.get(
        "/dashboard/analysis-chart", params=httpx.QueryParams([*RANGE, ("channels", "Email")])
    )
    assert response.status_code == 200, response.text
    assert summary(response.text) == {"sent": 2, "deliveries": 1, "opens": 1, "clicks": 1, "bounces": 1}
    assert "/dashboard/deliveries/v2?workspaceId=" in response.text
    assert select_options(response.text, "groupBy") == [
        "",
        "channel",
        "messageState",
        "journey",
        "broadcast",
        "messageTemplate",
        "provider",
    ]
    download = client.get("/dashboard/analysis-chart/download", params=httpx.QueryParams(RANGE))
    assert download.status_code == 200
    assert download.text.splitlines()[0] == "timestamp,groupKey,groupLabel,count,percent"
