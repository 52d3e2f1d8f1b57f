"""`/api/admin/deliveries` (Dittofeed §6.6): search, count and CSV download with admin API keys,
query strings in the `qs` forms Dittofeed's clients send, and 400s that name the bad field."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, make_parent
from tests.support.delivery_events import EMAIL, SMS, WEBHOOK, DeliveryEvents


class DeliveriesApi(AdminApi):
    prefix = "/api/admin/deliveries"

    def query(self, path: str = "", *pairs: tuple[str, str]) -> httpx.Response:
        """GET with the pairs as given (repeated keys, brackets), plus the workspace id."""
        params = httpx.QueryParams([("workspaceId", self.workspace_id), *pairs])
        return self.client.get(f"{self.prefix}{path}", params=params, headers=self.headers)


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> DeliveriesApi:
    events = DeliveryEvents(client, tenant.id)
    events.track("ORDER_PLACED", "trig-1", "ada", "2026-03-01T10:00:00Z", {"plan": "pro"})
    email = {"journeyId": "j-1", "triggeringMessageId": "trig-1"}
    events.sent("m-email", "ada", "2026-03-01T10:01:00Z", template="t-email", variant=EMAIL, tags=email)
    events.status("DFEmailOpened", "m-email", "ada", "2026-03-01T10:05:00Z")
    events.sent(
        "m-sms", "bob", "2026-03-01T10:02:00Z", template="t-sms", variant=SMS, tags={"broadcastId": "b-1"}
    )
    events.status("DFSmsDelivered", "m-sms", "bob", "2026-03-01T10:03:00Z")
    events.sent(
        "m-hook", "anon-1", "2026-03-01T10:03:00Z", template="t-hook", variant=WEBHOOK, anonymous=True
    )
    # A sibling's delivery, invisible here.
    sibling = parent.put_child("Tenant B", "tenant-b")
    DeliveryEvents(client, sibling.id).sent("m-b", "ada", "2026-03-01T10:04:00Z", template="t", variant=EMAIL)
    return DeliveriesApi(client, parent.admin_key, tenant.id)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["originMessageId"] for item in response.json()["items"]]


def test_search_answers_the_page_with_statuses(api: DeliveriesApi) -> None:
    response = api.query()
    assert ids(response) == ["m-hook", "m-sms", "m-email"]
    body = response.json()
    assert body["workspaceId"] == api.workspace_id
    assert "cursor" not in body and "previousCursor" not in body
    assert body["items"][2] == {
        "sentAt": "2026-03-01T10:01:00.000Z",
        "updatedAt": "2026-03-01T10:05:00.000Z",
        "status": "DFEmailOpened",
        "userId": "ada",
        "originMessageId": "m-email",
        "triggeringMessageId": "trig-1",
        "templateId": "t-email",
        "messageId": "m-email",
        "journeyId": "j-1",
        "variant": EMAIL,
    }
    assert api.query("/", ("userId", "ada")).json()["items"] == body["items"][2:]


def test_array_parameters_in_every_qs_form(api: DeliveriesApi) -> None:
    for pairs, expected in [
        ([("userId", "ada")], ["m-email"]),
        ([("userId", "ada"), ("userId", "bob")], ["m-sms", "m-email"]),
        ([("userId[]", "ada"), ("userId[]", "anon-1")], ["m-hook", "m-email"]),
        ([("channels", "Sms")], ["m-sms"]),
        ([("channels[0]", "Sms"), ("channels[1]", "Webhook")], ["m-hook", "m-sms"]),
        ([("templateIds[]", "t-email")], ["m-email"]),
        ([("to[]", "+15550001")], ["m-sms"]),
        ([("from", "news@acme.test")], ["m-email"]),
        ([("statuses[]", "DFInternalMessageSent"), ("statuses[]", "DFSmsDelivered")], ["m-hook", "m-sms"]),
        ([("journeyId", "j-1")], ["m-email"]),
        ([("broadcastId", "b-1")], ["m-sms"]),
        ([("triggeringProperties[0][key]", "plan"), ("triggeringProperties[0][value]", "pro")], ["m-email"]),
        ([("triggeringProperties[0][key]", "plan"), ("triggeringProperties[0][value]", "free")], []),
        ([("startDate", "2000-01-01"), ("endDate", "2999-01-01T00:00:00Z")], ["m-hook", "m-sms", "m-email"]),
        ([("endDate", "2000-01-01")], []),
    ]:
        assert ids(api.query("", *pairs)) == expected, pairs


def test_sorting_and_cursors(api: DeliveriesApi) -> None:
    first = api.query("", ("sortBy", "status"), ("sortDirection", "Asc"), ("limit", "2"))
    assert ids(first) == ["m-email", "m-hook"]
    cursor = first.json()["cursor"]
    assert json.loads(base64.b64decode(cursor)) == {"o": 2}
    second = api.query("", ("sortBy", "status"), ("sortDirection", "Asc"), ("limit", "2"), ("cursor", cursor))
    assert ids(second) == ["m-sms"]
    assert "cursor" not in second.json()
    assert json.loads(base64.b64decode(second.json()["previousCursor"])) == {"o": 0}


def test_count(api: DeliveriesApi) -> None:
    assert api.query("/count").json() == {"count": 3}
    assert api.query("/count", ("statuses", "DFEmailOpened")).json() == {"count": 1}


def test_download_is_a_csv_attachment(api: DeliveriesApi) -> None:
    before = datetime.now(UTC)
    response = api.query("/download", ("channels[]", "Email"))
    after = datetime.now(UTC)  # the file is named after the day of the download
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] in {
        f"attachment; filename=deliveries-{day:%Y-%m-%d}.csv" for day in (before, after)
    }
    header, row = response.text.split("\n")
    assert header == (
        "sentAt,updatedAt,journeyId,broadcastId,userId,isAnonymous,originMessageId,triggeringMessageId,"
        "templateId,status,variant"
    )
    assert row.startswith("2026-03-01T10:01:00.000Z,2026-03-01T10:05:00.000Z,j-1,,ada,false,m-email,trig-1,")


def test_bad_input_is_a_400_naming_the_field(api: DeliveriesApi) -> None:
    for path, pairs, field in [
        ("", [("startDate", "yesterday")], "startDate"),
        ("/count", [("endDate", "2026-13-01")], "endDate"),
        ("", [("sortBy", "subject")], "sortBy"),
        ("", [("sortDirection", "Up")], "sortDirection"),
        ("", [("channels[]", "Fax")], "channels"),
        ("", [("limit", "0")], "limit"),
        ("/download", [("triggeringProperties[0][value]", "pro")], "triggeringProperties"),
        ("", [("userId", "ada"), ("userId[x]", "bob")], "userId"),
    ]:
        response = api.query(path, *pairs)
        assert response.status_code == 400, (pairs, response.text)
        assert field in response.json()["message"], (pairs, response.text)


def test_a_key_of_another_tree_is_refused(api: DeliveriesApi, client: TestClient) -> None:
    stranger = make_parent(client, "Stranger")
    response = client.get(
        "/api/admin/deliveries",
        params={"workspaceId": api.workspace_id},
        headers={"authorization": f"Bearer {stranger.admin_key}"},
    )
    assert response.status_code == 401


def test_dates_beyond_what_the_store_holds_are_clamped_not_refused(api: DeliveriesApi) -> None:
    # ClickHouse's DateTime64 spans 1900–2299; a bound outside it is the same as the nearest edge.
    everything = api.query("", ("startDate", "0999-01-01T00:00:00Z"), ("endDate", "9999-12-31"))
    assert ids(everything) == ["m-hook", "m-sms", "m-email"]
    assert ids(api.query("", ("endDate", "0999-01-01T00:00:00Z"))) == []
    assert api.query("/count", ("startDate", "0001-01-01")).status_code == 200
