"""Delivery analysis (Dittofeed §6.12): chart buckets and groups, summary numbers per channel and
cascading journey stats, over DF events written through the app; the messageStates filter is
honoured (upstream ignores it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.analysis import (
    AnalysisFilter,
    chart_data,
    journey_stats,
    journeys_node_counts,
    resolve_granularity,
    summary,
    summary_of_chart,
)
from engine.delivery_facts import fold_pending_statuses
from engine.sent_messages import SentFilter
from tests.support.delivery_events import EMAIL, SMS, WEBHOOK, DeliveryEvents

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=3)
CLICKED = "DFEmailClicked"
SES = {**EMAIL, "provider": {"type": "AmazonSes", "messageId": "ses-1"}}


def processed(clock: str) -> datetime:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return datetime(2026, 3, 2, hours, minutes, seconds, tzinfo=UTC)


@pytest.fixture(params=["pending", "folded"])
def events(client: TestClient, request: pytest.FixtureRequest) -> DeliveryEvents:
    """Six messages in the range (3 Email, 2 Sms, 1 Webhook), one hidden, one before the range, and
    one in another workspace. Status events arrive later (processed now), and are either still pending
    or folded into the analysis facts (engine.delivery_facts): the answers are the same."""
    events = DeliveryEvents(client, str(uuid.uuid4()))
    n1 = {"journeyId": "j-1", "nodeId": "n-1"}
    n2 = {"journeyId": "j-1", "nodeId": "n-2"}
    sends: list[tuple[str, str, str, str, dict[str, Any], dict[str, Any], list[str]]] = [
        ("e1", "ada", "10:00:10", "t-welcome", EMAIL, n1, ["DFEmailDelivered", "DFEmailOpened", CLICKED]),
        ("e2", "bob", "10:00:50", "t-welcome", EMAIL, n1, [CLICKED]),
        ("e3", "carl", "10:01:20", "t-news", SES, {"broadcastId": "b-1"}, ["DFEmailBounced"]),
        ("s1", "ada", "10:01:40", "t-code", SMS, n2, ["DFSmsDelivered"]),
        ("s2", "bob", "10:02:05", "t-code", SMS, n2, ["DFSmsFailed"]),
        ("w1", "dan", "10:02:30", "t-hook", WEBHOOK, {"broadcastId": "b-1"}, []),
        ("o1", "ada", "09:00:00", "t-welcome", EMAIL, n1, ["DFEmailDelivered"]),
    ]  # fmt: skip
    for message_id, user, clock, template, variant, tags, statuses in sends:
        moment = processed(clock)
        events.sent(message_id, user, moment.isoformat(), template=template, variant=variant, tags=tags,
                    processed_at=moment)  # fmt: skip
        for offset, status in enumerate(statuses):
            events.status(status, message_id, user, (moment + timedelta(minutes=offset + 1)).isoformat())
    hidden = processed("10:00:20")
    events.sent("h1", "ada", hidden.isoformat(), template="t-welcome", variant=EMAIL, tags=n1,
                context={"hidden": True}, processed_at=hidden)  # fmt: skip
    events.status("DFEmailDelivered", "h1", "ada", hidden.isoformat())
    elsewhere = DeliveryEvents(client, str(uuid.uuid4()))
    elsewhere.sent("x1", "ada", hidden.isoformat(), template="t-welcome", variant=EMAIL, tags=n1,
                   processed_at=hidden)  # fmt: skip
    if request.param == "folded":
        fold_pending_statuses(events.store, events.workspace_id)
    return events


def chart(events: DeliveryEvents, **options: Any) -> list[tuple[str, int, str | None]]:
    where = AnalysisFilter(
        SentFilter(start=START, end=END, **options.pop("filters", {})), options.pop("states", ())
    )
    result = chart_data(events.store, events.workspace_id, where, **options)
    return [(point["timestamp"][11:16], point["count"], point.get("groupKey")) for point in result["data"]]


def test_granularity_auto_follows_the_range_width() -> None:
    for width, expected in [
        (timedelta(hours=2), "1minute"),
        (timedelta(hours=2, seconds=1), "5minutes"),
        (timedelta(hours=8), "5minutes"),
        (timedelta(hours=24), "30minutes"),
        (timedelta(days=7), "1hour"),
        (timedelta(days=30), "6hours"),
        (timedelta(days=90), "1day"),
        (timedelta(days=365), "7days"),
        (timedelta(days=366), "30days"),
    ]:
        assert resolve_granularity("auto", START, START + width) == expected, width
    assert resolve_granularity("12hours", START, START + timedelta(minutes=1)) == "12hours"


def test_chart_counts_sent_messages_per_bucket_of_processing_time(events: DeliveryEvents) -> None:
    result = chart_data(events.store, events.workspace_id, AnalysisFilter(SentFilter(start=START, end=END)))
    assert result == {
        "data": [
            {"timestamp": "2026-03-02T10:00:00.000Z", "count": 2},
            {"timestamp": "2026-03-02T10:01:00.000Z", "count": 2},
            {"timestamp": "2026-03-02T10:02:00.000Z", "count": 2},
        ],
        "granularity": "1minute",
    }
    assert chart(events, granularity="30second") == [
        ("10:00", 1, None), ("10:00", 1, None), ("10:01", 1, None), ("10:01", 1, None),
        ("10:02", 1, None), ("10:02", 1, None),
    ]  # fmt: skip


def test_chart_groups(events: DeliveryEvents) -> None:
    assert chart(events, group_by="channel") == [
        ("10:00", 2, "Email"), ("10:01", 1, "Email"), ("10:01", 1, "Sms"), ("10:02", 1, "Sms"),
        ("10:02", 1, "Webhook"),
    ]  # fmt: skip
    # A broadcast's message has no journey: its point has no group key.
    assert chart(events, group_by="journey") == [
        ("10:00", 2, "j-1"), ("10:01", 1, None), ("10:01", 1, "j-1"), ("10:02", 1, None), ("10:02", 1, "j-1"),
    ]  # fmt: skip
    hourly = {"granularity": "1hour"}
    assert chart(events, group_by="broadcast", **hourly) == [("10:00", 4, None), ("10:00", 2, "b-1")]
    assert chart(events, group_by="messageTemplate", **hourly) == [
        ("10:00", 2, "t-code"), ("10:00", 1, "t-hook"), ("10:00", 1, "t-news"), ("10:00", 2, "t-welcome"),
    ]  # fmt: skip
    assert chart(events, group_by="provider", **hourly) == [
        ("10:00", 1, None), ("10:00", 1, "AmazonSes"), ("10:00", 2, "SendGrid"), ("10:00", 2, "Twilio"),
    ]  # fmt: skip
    # Each state a message reached, no cascading: e2 was clicked without an open or a delivery.
    assert chart(events, group_by="messageState", **hourly) == [
        ("10:00", 2, "bounced"), ("10:00", 2, "clicked"), ("10:00", 2, "delivered"), ("10:00", 1, "opened"),
        ("10:00", 6, "sent"),
    ]  # fmt: skip


def test_chart_filters(events: DeliveryEvents) -> None:
    hourly: dict[str, Any] = {"granularity": "1hour"}
    for filters, expected in [
        ({"journey_ids": ["j-1"], "channels": ["Sms"]}, 2),
        ({"broadcast_ids": ["b-1"]}, 2),
        ({"providers": ["SendGrid"]}, 2),
        ({"user_ids": ["ada"]}, 2),
        ({"template_ids": ["t-news", "t-hook"]}, 2),
    ]:
        assert chart(events, filters=filters, **hourly) == [("10:00", expected, None)], filters


def test_chart_keeps_only_messages_in_the_given_states(events: DeliveryEvents) -> None:
    hourly: dict[str, Any] = {"granularity": "1hour"}
    assert chart(events, states=["clicked"], group_by="messageTemplate", **hourly) == [
        ("10:00", 2, "t-welcome")
    ]
    assert chart(events, states=["bounced", "opened"], group_by="channel", **hourly) == [
        ("10:00", 2, "Email"), ("10:00", 1, "Sms"),
    ]  # fmt: skip
    assert chart(events, states=["sent"], **hourly) == [("10:00", 6, None)]


def test_the_summary_of_all_channels_is_the_sum_of_the_chart(events: DeliveryEvents) -> None:
    for group_by in (None, "channel", "journey", "messageState"):
        for states in ((), ("opened", "bounced"), ("sent",)):
            where = AnalysisFilter(SentFilter(start=START, end=END), states)
            points = chart_data(events.store, events.workspace_id, where, group_by=group_by)
            expected = summary(events.store, events.workspace_id, where)
            assert summary_of_chart(points, group_by) == expected, (group_by, states)
    every_message = AnalysisFilter(SentFilter(start=START, end=END))
    chart_of_all = chart_data(events.store, events.workspace_id, every_message)
    assert summary_of_chart(chart_of_all, None)["summary"]["sent"] == 6


def test_summary_per_channel(events: DeliveryEvents) -> None:
    def numbers(channel: str | None = None, states: tuple[Any, ...] = ()) -> dict[str, int]:
        where = AnalysisFilter(SentFilter(start=START, end=END), states)
        result: dict[str, int] = summary(events.store, events.workspace_id, where, channel=channel)["summary"]
        return result

    assert numbers() == {"deliveries": 0, "sent": 6, "opens": 0, "clicks": 0, "bounces": 0}
    # Email: a delivery is delivered, opened or clicked; an open is opened or clicked.
    assert numbers("Email") == {"deliveries": 2, "sent": 3, "opens": 2, "clicks": 2, "bounces": 1}
    assert numbers("Sms") == {"deliveries": 1, "sent": 2, "opens": 0, "clicks": 0, "bounces": 1}
    assert numbers("Webhook") == {"deliveries": 0, "sent": 1, "opens": 0, "clicks": 0, "bounces": 0}
    assert numbers("Email", ("bounced",)) == {
        "deliveries": 0,
        "sent": 1,
        "opens": 0,
        "clicks": 0,
        "bounces": 1,
    }


def test_journey_stats_cascade_per_message_node(events: DeliveryEvents) -> None:
    in_range = journey_stats(events.store, events.workspace_id, "j-1", start=START, end=END)
    assert in_range == {
        "nodeStats": {
            "n-1": {"sent": 2, "delivered": 2, "opened": 2, "clicked": 2, "bounced": 0},
            "n-2": {"sent": 2, "delivered": 1, "opened": 0, "clicked": 0, "bounced": 1},
        }
    }
    every_time = journey_stats(events.store, events.workspace_id, "j-1")
    assert every_time["nodeStats"]["n-1"] == {
        "sent": 3,
        "delivered": 3,
        "opened": 2,
        "clicked": 2,
        "bounced": 0,
    }
    assert journey_stats(events.store, events.workspace_id, "j-other") == {"nodeStats": {}}


def test_several_journeys_are_counted_in_one_call_each_on_its_own(events: DeliveryEvents) -> None:
    moment = processed("10:00:30")
    events.sent("j2-1", "ada", moment.isoformat(), template="t-welcome", variant=EMAIL,
                tags={"journeyId": "j-2", "nodeId": "n-1"}, processed_at=moment)  # fmt: skip
    events.status(CLICKED, "j2-1", "ada", moment.isoformat())

    counts = journeys_node_counts(events.store, events.workspace_id, ["j-1", "j-2", "j-other"])

    assert counts == {
        "j-1": journey_stats(events.store, events.workspace_id, "j-1")["nodeStats"],
        "j-2": {"n-1": {"sent": 1, "delivered": 1, "opened": 1, "clicked": 1, "bounced": 0}},
    }
    assert journeys_node_counts(events.store, events.workspace_id, []) == {}
