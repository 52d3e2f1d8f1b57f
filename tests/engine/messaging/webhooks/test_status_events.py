"""The shared mapping of provider events to DF status events (Dittofeed §8.3): deterministic ids in the
workspace's namespace, properties = recipient fields ∪ metadata tags, and the events that are dropped."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from engine.messaging.webhooks.status_events import (
    ProviderEvent,
    StatusEventName,
    from_unix_seconds,
    parse_time,
    pick_tags,
    status_event_rows,
    status_message_id,
)

WORKSPACE = "6e2c1b9e-5d3f-4a8e-9b61-0f2f3c8d1a77"
OTHER_WORKSPACE = "0b8a4f3c-2e1d-4c5b-8a79-6d5e4f3a2b1c"
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(**overrides: object) -> ProviderEvent:
    fields: dict[str, object] = {
        "name": StatusEventName.EMAIL_DELIVERED,
        "provider_event_type": "delivered",
        "provider_message_id": "sg-1",
        "tags": {"workspaceId": WORKSPACE, "userId": "user-1", "messageId": "send-1"},
        "occurred_at": datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC),
        "fields": {"email": "example@test.com"},
    }
    fields.update(overrides)
    return ProviderEvent(**fields)  # type: ignore[arg-type]


def test_the_message_id_is_uuidv5_of_type_and_provider_id_in_the_workspace_namespace() -> None:
    expected = str(uuid.uuid5(uuid.UUID(WORKSPACE), "delivered:sg-1"))
    assert status_message_id(WORKSPACE, "delivered", "sg-1") == expected
    assert status_message_id(OTHER_WORKSPACE, "delivered", "sg-1") != expected
    assert status_message_id(WORKSPACE, "open", "sg-1") != expected


def test_a_status_event_is_a_track_event_on_the_tagged_user() -> None:
    (row,) = status_event_rows(WORKSPACE, [_event()], RECEIVED)
    message = json.loads(row.message_raw)
    assert message == {
        "messageId": status_message_id(WORKSPACE, "delivered", "sg-1"),
        "userId": "user-1",
        "event": "DFEmailDelivered",
        "timestamp": "2017-12-15T00:59:29.000Z",
        "type": "track",
        "properties": {
            "email": "example@test.com",
            "workspaceId": WORKSPACE,
            "userId": "user-1",
            "messageId": "send-1",
        },
    }
    assert (row.workspace_id, row.message_id) == (WORKSPACE, message["messageId"])


def test_a_fixed_message_id_is_kept() -> None:
    (row,) = status_event_rows(WORKSPACE, [_event(message_id="processed:<smtp@x>")], RECEIVED)
    assert row.message_id == "processed:<smtp@x>"


def test_events_without_a_user_or_for_another_workspace_are_dropped() -> None:
    no_user = _event(tags={"workspaceId": WORKSPACE, "messageId": "send-1"})
    elsewhere = _event(tags={"workspaceId": OTHER_WORKSPACE, "userId": "user-1"})
    untagged_workspace = _event(tags={"userId": "user-2"})
    rows = status_event_rows(WORKSPACE, [no_user, elsewhere, untagged_workspace], RECEIVED)
    assert [json.loads(row.message_raw)["userId"] for row in rows] == ["user-2"]


def test_only_metadata_tags_with_text_values_are_kept() -> None:
    source = {
        "workspaceId": WORKSPACE,
        "userId": "u",
        "journeyId": "",
        "templateId": 7,
        "nodeId": "n",
        "category": "cat facts",
        "sg_event_id": "x",
    }
    assert pick_tags(source) == {"workspaceId": WORKSPACE, "userId": "u", "nodeId": "n"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-11-05T16:33:54.9070259Z", datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)),
        ("2024-02-22T23:41:11.894719+00:00", datetime(2024, 2, 22, 23, 41, 11, 894719, tzinfo=UTC)),
        ("2014-08-01T13:28:10.2735393-04:00", datetime(2014, 8, 1, 17, 28, 10, 273539, tzinfo=UTC)),
        ("2016-10-19T23:20:52Z", datetime(2016, 10, 19, 23, 20, 52, tzinfo=UTC)),
        ("2016-10-19 23:20:52", datetime(2016, 10, 19, 23, 20, 52, tzinfo=UTC)),
        ("yesterday", None),
        ("2016-13-45T00:00:00Z", None),
        (1700000000, None),
    ],
)
def test_provider_timestamps_are_parsed_to_utc(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1513299569, datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)),
        ("1365111111", datetime(2013, 4, 4, 21, 31, 51, tzinfo=UTC)),
        (True, None),
        ("soon", None),
        (1e300, None),
    ],
)
def test_unix_seconds_are_read_as_utc(value: object, expected: datetime | None) -> None:
    assert from_unix_seconds(value) == expected
