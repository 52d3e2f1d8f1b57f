"""`GET /api/admin/events` lists a workspace's events newest first, with Dittofeed's filters and shape."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.event_search import list_event_property_keys
from tests.gateway.api.conftest import ParentAccount, Tenant, admin_key_for
from tests.support.delivery_events import DeliveryEvents


def _send(client: TestClient, tenant: Tenant, kind: str, body: dict[str, Any]) -> None:
    response = client.post(f"/api/public/apps/{kind}", json=body, headers={"authorization": tenant.write_key})
    assert response.status_code == 204, response.text


def _events(client: TestClient, parent: ParentAccount, **query: Any) -> Any:
    response = client.get(
        "/api/admin/events", params=query, headers={"authorization": f"Bearer {parent.admin_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def history(client: TestClient, tenant: Tenant) -> Tenant:
    """Four events sent one request at a time, so their processing times are ordered."""
    _send(client, tenant, "identify", {"userId": "ann", "messageId": "m1", "traits": {"plan": "pro"}})
    _send(
        client,
        tenant,
        "track",
        {
            "userId": "ann",
            "messageId": "m2",
            "event": "ORDER_PLACED",
            "properties": {"total": 5},
            "context": {"ip": "1.2.3.4"},
        },
    )
    _send(
        client,
        tenant,
        "track",
        {
            "anonymousId": "anon-1",
            "messageId": "m3",
            "event": "100%_OFF",
            "properties": {"broadcastId": "b-1"},
        },
    )
    _send(client, tenant, "page", {"userId": "bob", "messageId": "m4", "name": "Home"})
    return tenant


def test_events_are_listed_newest_first_in_dittofeeds_shape(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    body = _events(client, parent, workspaceId=history.id)
    assert body["count"] == 4
    assert [e["messageId"] for e in body["events"]] == ["m4", "m3", "m2", "m1"]
    identify = body["events"][3]
    assert identify.keys() == {
        "messageId",
        "eventType",
        "event",
        "userId",
        "anonymousId",
        "processingTime",
        "eventTime",
        "traits",
    }
    assert (identify["eventType"], identify["event"], identify["userId"], identify["anonymousId"]) == (
        "identify",
        "",
        "ann",
        None,
    )
    assert identify["traits"] == '{"plan":"pro"}'
    assert body["events"][1]["traits"] == '{"broadcastId":"b-1"}' and body["events"][1]["userId"] is None
    assert len(identify["processingTime"]) == len("2026-01-01 00:00:00.000")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"userId": "ann"}, ["m2", "m1"]),
        ({"eventType": "track"}, ["m3", "m2"]),
        ({"event": ["ORDER_PLACED", "100%_OFF"]}, ["m3", "m2"]),
        ({"event[]": "ORDER_PLACED"}, ["m2"]),
        ({"searchTerm": "order"}, []),  # LIKE is case-sensitive, as in ClickHouse
        ({"searchTerm": "ORDER"}, ["m2"]),
        ({"searchTerm": "page"}, ["m4"]),
        ({"searchTerm": "m3"}, ["m3"]),
        ({"searchTerm": "%"}, ["m3"]),  # a literal percent sign, not a wildcard
        ({"messageId": ["m1", "m4"]}, ["m4", "m1"]),
        ({"messageId": "m2"}, ["m2"]),
        ({"broadcastId": "b-1"}, ["m3"]),
        ({"limit": 2}, ["m4", "m3"]),
        ({"limit": 2, "offset": 3}, ["m1"]),
    ],
)
def test_filters(
    client: TestClient, parent: ParentAccount, history: Tenant, query: dict[str, Any], expected: list[str]
) -> None:
    body = _events(client, parent, workspaceId=history.id, **query)
    assert [e["messageId"] for e in body["events"]] == expected
    if "limit" not in query:
        assert body["count"] == len(expected)
    else:
        assert body["count"] == 4


def test_date_range_is_epoch_milliseconds_on_processing_time(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    _send(client, tenant, "track", {"userId": "u", "messageId": "old", "event": "E"})
    time.sleep(0.01)
    boundary = int(time.time() * 1000)
    time.sleep(0.01)
    _send(
        client,
        tenant,
        "track",
        {"userId": "u", "messageId": "new", "event": "E", "timestamp": "2001-01-01T00:00:00Z"},
    )
    after = _events(client, parent, workspaceId=tenant.id, startDate=boundary)
    before = _events(client, parent, workspaceId=tenant.id, endDate=boundary)
    assert [e["messageId"] for e in after["events"]] == ["new"]
    assert [e["messageId"] for e in before["events"]] == ["old"]
    assert after["events"][0]["eventTime"] == "2001-01-01 00:00:00.000"


def test_an_end_date_beyond_what_the_store_holds_means_no_end(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    _send(client, tenant, "track", {"userId": "u", "messageId": "only", "event": "E"})
    for end in (253402300800000, 9.223372036854776e21):
        body = _events(client, parent, workspaceId=tenant.id, endDate=end)
        assert [e["messageId"] for e in body["events"]] == ["only"]


def test_include_context_adds_the_events_context(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    body = _events(client, parent, workspaceId=history.id, messageId="m2", includeContext="true")
    assert body["events"][0]["context"] == '{"ip":"1.2.3.4"}'


def test_a_parent_sees_its_childrens_events(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    other = parent.put_child("Tenant B", "tenant-b")
    _send(client, other, "track", {"userId": "zed", "messageId": "b1", "event": "E"})
    body = _events(client, parent, workspaceId=parent.id)
    assert body["count"] == 5 and {e["messageId"] for e in body["events"]} == {"m1", "m2", "m3", "m4", "b1"}
    assert _events(client, parent, workspaceId=other.id)["count"] == 1


def test_a_repeated_message_id_does_not_change_the_count(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    _send(client, history, "track", {"userId": "ann", "messageId": "m2", "event": "ORDER_PLACED"})
    assert _events(client, parent, workspaceId=history.id)["count"] == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "querystring/limit"),
        ({"limit": "many"}, "querystring/limit"),
        ({"offset": "-1"}, "querystring/offset"),
        ({"startDate": "yesterday"}, "querystring/startDate"),
        ({"eventType": "purchase"}, "querystring/eventType"),
    ],
)
def test_bad_queries_are_400_naming_the_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant, query: dict[str, str], field: str
) -> None:
    response = client.get(
        "/api/admin/events",
        params={"workspaceId": tenant.id, **query},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith(field)


def test_a_childs_key_cannot_read_a_sibling(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    sibling_key = admin_key_for(client, parent.put_child("Sibling", "sib").id)
    response = client.get(
        "/api/admin/events",
        params={"workspaceId": history.id},
        headers={"authorization": f"Bearer {sibling_key}"},
    )
    assert (response.status_code, response.json()) == (401, {"message": "API key not valid"})


def test_download_is_a_csv_of_the_filtered_events_in_dittofeeds_columns(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    headers = {"authorization": f"Bearer {parent.admin_key}"}
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    response = client.get(
        "/api/admin/events/download", params={"workspaceId": history.id, "userId": "ann"}, headers=headers
    )
    after = datetime.now(UTC).strftime("%Y-%m-%d")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] in {
        f"attachment; filename=events-{day}.csv" for day in (before, after)
    }
    assert not response.text.endswith("\n")
    header, *rows = csv.reader(io.StringIO(response.text))
    assert header == [
        "messageId", "eventType", "event", "userId", "anonymousId", "processingTime", "eventTime", "traits",
        "properties",
    ]  # fmt: skip
    assert [row[:5] for row in rows] == [
        ["m2", "track", "ORDER_PLACED", "ann", ""],
        ["m1", "identify", "", "ann", ""],
    ]
    assert [row[7:] for row in rows] == [["", '{"total":5}'], ['{"plan":"pro"}', ""]]
    listed = _events(client, parent, workspaceId=history.id, userId="ann")["events"]
    assert [row[5:7] for row in rows] == [[e["processingTime"], e["eventTime"]] for e in listed]


def test_download_cells_never_run_as_spreadsheet_formulas(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    _send(client, tenant, "track", {"userId": "=1+1", "messageId": "@m", "event": "-E"})
    response = client.get(
        "/api/admin/events/download",
        params={"workspaceId": tenant.id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    [row] = list(csv.reader(io.StringIO(response.text)))[1:]
    assert row[:4] == ["'@m", "track", "'-E", "'=1+1"]


def test_download_refuses_bad_filters_and_other_tenants(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    url = "/api/admin/events/download"
    bad = client.get(
        url,
        params={"workspaceId": history.id, "startDate": "yesterday"},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert bad.status_code == 400 and bad.json()["message"].startswith("querystring/startDate")
    sibling_key = admin_key_for(client, parent.put_child("Sibling", "sib").id)
    theirs = client.get(
        url, params={"workspaceId": history.id}, headers={"authorization": f"Bearer {sibling_key}"}
    )
    assert (theirs.status_code, theirs.json()) == (401, {"message": "API key not valid"})


def test_trait_and_property_discovery(client: TestClient, parent: ParentAccount, history: Tenant) -> None:
    headers = {"authorization": f"Bearer {parent.admin_key}"}
    traits = client.get("/api/admin/events/traits", params={"workspaceId": history.id}, headers=headers)
    assert (traits.status_code, traits.json()) == (200, {"traits": ["plan"]})
    properties = client.get(
        "/api/admin/events/properties", params={"workspaceId": history.id}, headers=headers
    )
    assert properties.json() == {"properties": {"100%_OFF": ["broadcastId"], "ORDER_PLACED": ["total"]}}


def test_property_discovery_can_leave_feedgates_own_events_out(
    client: TestClient, parent: ParentAccount, history: Tenant
) -> None:
    DeliveryEvents(client, history.id).sent(
        "m-sent",
        "ann",
        "2026-03-01T10:00:00Z",
        template="t",
        variant={"type": "Sms", "to": "+1", "body": "x"},
    )
    store = client.app.state.event_store  # type: ignore[attr-defined]

    everything = list_event_property_keys(store, [history.id])
    product = list_event_property_keys(store, [history.id], include_internal=False)

    assert "DFInternalMessageSent" in everything
    assert product == {"100%_OFF": ["broadcastId"], "ORDER_PLACED": ["total"]}
