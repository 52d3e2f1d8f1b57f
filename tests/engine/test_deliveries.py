"""Deliveries (Dittofeed §6.6, §8.2): a workspace's sent messages with their latest status, filtered,
sorted, paged and downloaded, over DF events written through the app."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.deliveries import (
    DeliveryFilter,
    DeliverySort,
    count_deliveries,
    deliveries_csv,
    search_deliveries,
)
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.sent_messages import PropertyMatch as P
from engine.sent_messages import SentFilter
from engine.storage.event_store import EventStore
from tests.support.delivery_events import EMAIL, SMS, WEBHOOK, DeliveryEvents
from tests.support.migrations import forget_migrations_from


def at(clock: str) -> str:
    return f"2026-03-01T{clock}.000Z"


@pytest.fixture
def events(client: TestClient) -> DeliveryEvents:
    """Three visible deliveries (Email, Sms, anonymous Webhook), one hidden, and one elsewhere."""
    events = DeliveryEvents(client, str(uuid.uuid4()))
    events.track(
        "ORDER_PLACED", "trig-1", "ada", at("10:00:30"), {"plan": "pro", "count": 3, "tags": ["gift", "rush"]}
    )
    email = {"journeyId": "j-1", "nodeId": "n-email", "runId": "r-1", "triggeringMessageId": "trig-1"}
    events.sent("m-email", "ada", at("10:01:00"), template="t-email", variant=EMAIL, tags=email)
    events.sent("m-email", "ada", at("10:01:00"), template="t-email", variant=EMAIL, tags=email)  # duplicate
    # Arriving out of order: the latest by event time is Opened.
    events.status("DFEmailClicked", "m-email", "ada", at("10:04:00"))
    events.status("DFEmailOpened", "m-email", "ada", at("10:05:00"))
    events.status("DFEmailDelivered", "m-email", "ada", at("10:02:00"))
    events.status("DFEmailDelivered", "m-email", "ada", at("10:02:00"))  # duplicate
    events.sent(
        "m-sms", "bob", at("10:02:00"), template="t-sms", variant=SMS, tags={"broadcastId": "b-1"},
        context={"source": "checkout", "attempt": 2},
    )  # fmt: skip
    events.status("DFSmsDelivered", "m-sms", "bob", at("10:03:00"))
    events.status("DFSmsFailed", "m-sms", "bob", at("10:02:30"))  # later to arrive, earlier in time
    events.sent(
        "m-hook", "anon-1", at("10:03:00"), template="t-hook", variant=WEBHOOK, anonymous=True,
        tags={"journeyId": "j-1", "nodeId": "n-hook"},
    )  # fmt: skip
    events.status("DFEmailDropped", "m-hook", "anon-1", at("10:06:00"), hidden=True)
    events.sent(
        "m-hidden", "ada", at("10:04:00"), template="t-email", variant=EMAIL, context={"hidden": True}
    )
    events.status("DFEmailDelivered", "m-hidden", "ada", at("10:04:30"))
    elsewhere = DeliveryEvents(client, str(uuid.uuid4()))
    elsewhere.sent("m-other", "ada", at("10:05:00"), template="t-email", variant=EMAIL)
    return events


def search(events: DeliveryEvents, **options: Any) -> dict[str, Any]:
    return search_deliveries(
        events.store, events.workspace_id, options.pop("where", DeliveryFilter()), **options
    )


def ids(page: dict[str, Any]) -> list[str]:
    return [item["originMessageId"] for item in page["items"]]


def test_each_sent_message_appears_once_with_its_sent_event_and_latest_status(events: DeliveryEvents) -> None:
    page = search(events)
    assert page == {
        "workspaceId": events.workspace_id,
        "items": [
            {
                "sentAt": "2026-03-01T10:03:00.000Z",
                "updatedAt": "2026-03-01T10:03:00.000Z",
                "status": "DFInternalMessageSent",  # its only status event is hidden
                "userId": "anon-1",
                "originMessageId": "m-hook",
                "isAnonymous": True,
                "templateId": "t-hook",
                "messageId": "m-hook",
                "journeyId": "j-1",
                "nodeId": "n-hook",
                "variant": WEBHOOK,
            },
            {
                "sentAt": "2026-03-01T10:02:00.000Z",
                "updatedAt": "2026-03-01T10:03:00.000Z",
                "status": "DFSmsDelivered",  # SmsFailed arrived later but happened earlier
                "userId": "bob",
                "originMessageId": "m-sms",
                "templateId": "t-sms",
                "messageId": "m-sms",
                "broadcastId": "b-1",
                "variant": SMS,
            },
            {
                "sentAt": "2026-03-01T10:01:00.000Z",
                "updatedAt": "2026-03-01T10:05:00.000Z",
                "status": "DFEmailOpened",
                "userId": "ada",
                "originMessageId": "m-email",
                "triggeringMessageId": "trig-1",
                "templateId": "t-email",
                "messageId": "m-email",
                "journeyId": "j-1",
                "nodeId": "n-email",
                "runId": "r-1",
                "variant": EMAIL,
            },
        ],
    }
    assert count_deliveries(events.store, events.workspace_id, DeliveryFilter()) == 3


SORTS = [
    (DeliverySort("sentAt", "Asc"), ["m-email", "m-sms", "m-hook"]),
    # DFEmailOpened < DFInternalMessageSent < DFSmsDelivered
    (DeliverySort("status", "Asc"), ["m-email", "m-hook", "m-sms"]),
    (DeliverySort("status", "Desc"), ["m-sms", "m-hook", "m-email"]),
    (DeliverySort("to", "Asc"), ["m-sms", "m-email", "m-hook"]),
    (DeliverySort("to", "Desc"), ["m-hook", "m-email", "m-sms"]),
    # No sender on Sms and Webhook: the tie goes to the later sentAt.
    (DeliverySort("from", "Asc"), ["m-hook", "m-sms", "m-email"]),
]


def test_sort_orders(events: DeliveryEvents) -> None:
    for sort, expected in SORTS:
        assert ids(search(events, sort=sort)) == expected, sort


def test_ties_break_by_sent_at_descending_then_origin_message_id(client: TestClient) -> None:
    events = DeliveryEvents(client, str(uuid.uuid4()))
    for message_id, clock in [("m-b", "10:00:00"), ("m-c", "10:01:00"), ("m-a", "10:01:00")]:
        events.sent(message_id, "ada", at(clock), template="t", variant=EMAIL)
    assert ids(search(events)) == ["m-a", "m-c", "m-b"]
    assert ids(search(events, sort=DeliverySort("status", "Asc"))) == ["m-a", "m-c", "m-b"]


SENT_FILTERS = [
    (SentFilter(user_ids=["ada"]), ["m-email"]),
    (SentFilter(user_ids=["ada", "anon-1"]), ["m-hook", "m-email"]),
    (SentFilter(channels=["Sms", "Webhook"]), ["m-hook", "m-sms"]),
    (SentFilter(template_ids=["t-email"]), ["m-email"]),
    (SentFilter(to=["+15550001"]), ["m-sms"]),
    (SentFilter(senders=["news@acme.test"]), ["m-email"]),
    (SentFilter(journey_ids=["j-1"]), ["m-hook", "m-email"]),
    (SentFilter(broadcast_ids=["b-1"]), ["m-sms"]),
    (SentFilter(triggering_properties=[P("plan", "pro")]), ["m-email"]),
    # One key given twice: either value; two keys: both. A number matches its text.
    (SentFilter(triggering_properties=[P("plan", "free"), P("plan", "pro")]), ["m-email"]),
    (SentFilter(triggering_properties=[P("plan", "pro"), P("count", "3")]), ["m-email"]),
    (SentFilter(triggering_properties=[P("plan", "pro"), P("count", 4)]), []),
    (SentFilter(triggering_properties=[P("tags", "rush")]), ["m-email"]),
    (SentFilter(context_values=[P("source", "checkout")]), ["m-sms"]),
    (SentFilter(context_values=[P("attempt", 2)]), ["m-sms"]),
    (SentFilter(context_values=[P("source", "cart")]), []),
]


def test_sent_message_filters(events: DeliveryEvents) -> None:
    for where, expected in SENT_FILTERS:
        assert ids(search(events, where=DeliveryFilter(sent=where))) == expected, where
        assert count_deliveries(events.store, events.workspace_id, DeliveryFilter(sent=where)) == len(
            expected
        )


def test_status_filter_keeps_current_statuses(events: DeliveryEvents) -> None:
    for statuses, expected in [
        (["DFEmailOpened"], ["m-email"]),
        (["DFEmailDelivered"], []),  # an earlier status is not the current one
        (["DFInternalMessageSent", "DFSmsDelivered"], ["m-hook", "m-sms"]),
    ]:
        where = DeliveryFilter(statuses=statuses)
        assert ids(search(events, where=where)) == expected, statuses
        assert count_deliveries(events.store, events.workspace_id, where) == len(expected)


def test_group_filter_keeps_users_currently_in_the_groups(events: DeliveryEvents) -> None:
    first, later = datetime(2026, 3, 1, 11, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC)
    events.write("group", {"userId": "ada", "groupId": "g-1", "messageId": "g1"}, first)
    events.write("group", {"userId": "bob", "groupId": "g-1", "messageId": "g2"}, first)
    events.write("group", {"userId": "bob", "groupId": "g-1", "assigned": False, "messageId": "g3"}, later)
    events.write("group", {"userId": "bob", "groupId": "g-2", "messageId": "g4"}, first)
    assert ids(search(events, where=DeliveryFilter(SentFilter(group_ids=["g-1"])))) == ["m-email"]
    assert ids(search(events, where=DeliveryFilter(SentFilter(group_ids=["g-1", "g-2"])))) == [
        "m-sms",
        "m-email",
    ]


def test_date_range_bounds_the_processing_time_inclusively(client: TestClient) -> None:
    events = DeliveryEvents(client, str(uuid.uuid4()))
    for index, hour in enumerate([8, 9, 10, 11]):
        processed = datetime(2026, 3, 1, hour, tzinfo=UTC)
        events.sent(
            f"m-{hour}", "ada", at(f"0{index}:00:00"), template="t", variant=EMAIL, processed_at=processed
        )
    where = DeliveryFilter(
        SentFilter(start=datetime(2026, 3, 1, 9, tzinfo=UTC), end=datetime(2026, 3, 1, 10, tzinfo=UTC))
    )
    assert ids(search(events, where=where)) == ["m-10", "m-9"]


def test_cursors_page_by_offset(events: DeliveryEvents) -> None:
    first = search(events, limit=2)
    assert ids(first) == ["m-hook", "m-sms"]
    assert json.loads(base64.b64decode(first["cursor"])) == {"o": 2}
    assert "previousCursor" not in first
    second = search(events, limit=2, cursor=first["cursor"])
    assert ids(second) == ["m-email"]
    assert "cursor" not in second
    assert json.loads(base64.b64decode(second["previousCursor"])) == {"o": 0}
    # An unreadable cursor starts over, as upstream's does.
    assert ids(search(events, limit=2, cursor="not a cursor")) == ["m-hook", "m-sms"]


def test_csv_download(events: DeliveryEvents) -> None:
    content = deliveries_csv(
        events.store, events.workspace_id, DeliveryFilter(statuses=["DFEmailOpened", "DFSmsDelivered"])
    )
    email = json.dumps(EMAIL, separators=(",", ":")).replace('"', '""')
    sms = json.dumps(SMS, separators=(",", ":")).replace('"', '""')
    assert content.split("\n") == [
        "sentAt,updatedAt,journeyId,broadcastId,userId,isAnonymous,originMessageId,triggeringMessageId,"
        "templateId,status,variant",
        f'2026-03-01T10:02:00.000Z,2026-03-01T10:03:00.000Z,,b-1,bob,false,m-sms,,t-sms,DFSmsDelivered,"{sms}"',
        "2026-03-01T10:01:00.000Z,2026-03-01T10:05:00.000Z,j-1,,ada,false,m-email,trig-1,t-email,"
        f'DFEmailOpened,"{email}"',
    ]  # fmt: skip


def test_csv_cells_never_run_as_spreadsheet_formulas(client: TestClient) -> None:
    events = DeliveryEvents(client, str(uuid.uuid4()))
    events.sent("+m-1", '=HYPERLINK("http://evil.test")', at("10:01:00"), template="@t", variant=EMAIL)

    [row] = list(
        csv.reader(io.StringIO(deliveries_csv(events.store, events.workspace_id, DeliveryFilter())))
    )[1:]

    user, message, template = row[4], row[6], row[8]
    assert (user, message, template) == ('\'=HYPERLINK("http://evil.test")', "'+m-1", "'@t")
    assert row[0] == "2026-03-01T10:01:00.000Z"  # other cells as they were


def test_migration_copies_status_events_stored_before_the_status_table(event_store: EventStore) -> None:
    later_versions = forget_migrations_from(event_store, "delivery_status")
    workspace_id = str(uuid.uuid4())
    raw = {"userId": "ada", "messageId": "s-1", "event": "DFEmailOpened", "timestamp": at("10:05:00"),
           "properties": {"messageId": "m-email"}}  # fmt: skip
    rows = build_rows(workspace_id, "track", raw, datetime.now(UTC))
    event_store.insert(
        "user_events_v2", [row.values(datetime.now(UTC)) for row in rows], EVENT_COLUMNS, EVENT_COLUMN_TYPES
    )

    assert event_store.migrate() == later_versions
    assert event_store.query(
        "SELECT origin_message_id, toString(latest.3), opened FROM delivery_status FINAL"
        " WHERE workspace_id = {w:String}",
        {"w": workspace_id},
    ) == [("m-email", "DFEmailOpened", 1)]
