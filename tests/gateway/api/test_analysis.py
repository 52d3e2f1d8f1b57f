"""`/api/admin/analysis` (Dittofeed §6.12): chart data, summary and journey stats with admin API keys,
query objects in `qs` bracket syntax, and 400s that name the bad field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant
from tests.support.delivery_events import EMAIL, SMS, DeliveryEvents

START = "2026-03-02T10:00:00.000Z"
END = "2026-03-02T11:00:00.000Z"


class AnalysisApi(AdminApi):
    prefix = "/api/admin/analysis"

    def query(self, path: str, *pairs: tuple[str, str]) -> httpx.Response:
        """GET with the pairs as given (brackets, repeated keys), plus the workspace id."""
        params = httpx.QueryParams([("workspaceId", self.workspace_id), *pairs])
        return self.client.get(f"{self.prefix}{path}", params=params, headers=self.headers)


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> AnalysisApi:
    """Two Email messages of journey j-1 at 10:05 and 10:20 (one clicked, one bounced) and an Sms of
    broadcast b-1 at 10:40 (delivered)."""
    events = DeliveryEvents(client, tenant.id)
    for message_id, minute, variant, tags, statuses in [
        ("e1", 5, EMAIL, {"journeyId": "j-1", "nodeId": "n-1"}, ["DFEmailDelivered", "DFEmailClicked"]),
        ("e2", 20, EMAIL, {"journeyId": "j-1", "nodeId": "n-1"}, ["DFEmailBounced"]),
        ("s1", 40, SMS, {"broadcastId": "b-1"}, ["DFSmsDelivered"]),
    ]:
        moment = datetime(2026, 3, 2, 10, minute, tzinfo=UTC)
        events.sent(message_id, "ada", moment.isoformat(), template="t", variant=variant, tags=tags,
                    processed_at=moment)  # fmt: skip
        for status in statuses:
            events.status(status, message_id, "ada", (moment + timedelta(minutes=1)).isoformat())
    return AnalysisApi(client, parent.admin_key, tenant.id)


def ok(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    return response.json()


def test_chart_data_with_bracketed_filters(api: AnalysisApi) -> None:
    assert ok(api.query("/chart-data", ("startDate", START), ("endDate", END))) == {
        "data": [
            {"timestamp": "2026-03-02T10:05:00.000Z", "count": 1},
            {"timestamp": "2026-03-02T10:20:00.000Z", "count": 1},
            {"timestamp": "2026-03-02T10:40:00.000Z", "count": 1},
        ],
        "granularity": "1minute",
    }
    filtered = api.query(
        "/chart-data",
        ("startDate", START),
        ("endDate", END),
        ("granularity", "30minutes"),
        ("groupBy", "messageState"),
        ("filters[journeyIds][0]", "j-1"),
        ("filters[channels][]", "Email"),
    )
    assert ok(filtered) == {
        "data": [
            {
                "timestamp": "2026-03-02T10:00:00.000Z",
                "count": 1,
                "groupKey": "bounced",
                "groupLabel": "bounced",
            },
            {
                "timestamp": "2026-03-02T10:00:00.000Z",
                "count": 1,
                "groupKey": "clicked",
                "groupLabel": "clicked",
            },
            {
                "timestamp": "2026-03-02T10:00:00.000Z",
                "count": 1,
                "groupKey": "delivered",
                "groupLabel": "delivered",
            },
            {"timestamp": "2026-03-02T10:00:00.000Z", "count": 2, "groupKey": "sent", "groupLabel": "sent"},
        ],
        "granularity": "30minutes",
    }
    clicked = api.query(
        "/chart-data", ("startDate", START), ("endDate", END), ("granularity", "1hour"),
        ("filters[messageStates][0]", "clicked"),
    )  # fmt: skip
    assert ok(clicked) == {
        "data": [{"timestamp": "2026-03-02T10:00:00.000Z", "count": 1}],
        "granularity": "1hour",
    }


def test_summary_per_channel(api: AnalysisApi) -> None:
    assert ok(api.query("/summary", ("startDate", START), ("endDate", END))) == {
        "summary": {"deliveries": 0, "sent": 3, "opens": 0, "clicks": 0, "bounces": 0}
    }
    assert ok(
        api.query("/summary", ("startDate", START), ("endDate", END), ("filters[channel]", "Email"))
    ) == {"summary": {"deliveries": 1, "sent": 2, "opens": 1, "clicks": 1, "bounces": 1}}
    sms = api.query("/summary", ("startDate", START), ("endDate", END), ("filters[channel]", "Sms"))
    assert ok(sms) == {"summary": {"deliveries": 1, "sent": 1, "opens": 0, "clicks": 0, "bounces": 0}}


def test_journey_stats(api: AnalysisApi) -> None:
    assert ok(api.query("/journey-stats", ("journeyId", "j-1"), ("startDate", START), ("endDate", END))) == {
        "nodeStats": {"n-1": {"sent": 2, "delivered": 1, "opened": 1, "clicked": 1, "bounced": 1}}
    }
    assert ok(api.query("/journey-stats", ("journeyId", "j-1"), ("endDate", "2026-03-02T10:10:00Z"))) == {
        "nodeStats": {"n-1": {"sent": 1, "delivered": 1, "opened": 1, "clicked": 1, "bounced": 0}}
    }


def test_bad_input_is_a_400_naming_the_field(api: AnalysisApi) -> None:
    dates = (("startDate", START), ("endDate", END))
    for path, pairs, field in [
        ("/chart-data", [("endDate", END)], "startDate"),
        ("/chart-data", [("startDate", "soon"), ("endDate", END)], "startDate"),
        ("/chart-data", [*dates, ("granularity", "2minutes")], "granularity"),
        ("/chart-data", [*dates, ("groupBy", "user")], "groupBy"),
        ("/chart-data", [*dates, ("filters[messageStates][0]", "read")], "messageStates"),
        ("/chart-data", [*dates, ("filters[channels][0]", "Fax")], "channels"),
        ("/summary", [*dates, ("filters[channel]", "Fax")], "channel"),
        ("/summary", [("startDate", START), ("endDate", "2026-02-30")], "endDate"),
        ("/journey-stats", [*dates], "journeyId"),
    ]:
        response = api.query(path, *pairs)
        assert response.status_code == 400, (path, pairs, response.text)
        assert field in response.json()["message"], (path, pairs, response.text)
