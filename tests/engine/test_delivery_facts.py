"""The analysis facts (engine.delivery_facts): whatever order sent messages, status events and folds
come in, and even when a fold dies half-way, analysis counts exactly what the status events say."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from engine import delivery_facts
from engine.analysis import AnalysisFilter, MessageState, chart_data, journeys_node_counts, summary
from engine.delivery_facts import facts_sql, fold_pending_statuses
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.sent_messages import Parameters, SentFilter
from engine.storage.event_store import EventStore
from engine.users import delete_users

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# Status event -> the states it sets (as analysis reads them).
STATUSES = {
    "DFEmailDelivered": {"delivered"},
    "DFEmailOpened": {"opened"},
    "DFEmailClicked": {"clicked"},
    "DFEmailBounced": {"bounced"},
    "DFSmsDelivered": {"delivered"},
    "DFSmsFailed": {"bounced"},
    "DFEmailDropped": set(),
}
# The summary of all channels: only the sent count is given (upstream's rules).
NOTHING = {"deliveries": 0, "sent": 0, "opens": 0, "clicks": 0, "bounces": 0}
STATES = ("sent", "delivered", "opened", "clicked", "bounced")


@dataclass(frozen=True)
class Message:
    id: str
    minute: int
    channel: str
    node: str
    hidden: bool = False


class CrashingStore:
    """The store, except that cancelling pending status events fails: a fold dying between its inserts."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def insert(self, table: str, *args: Any, **kwargs: Any) -> None:
        if table == "delivery_status_pending":
            raise RuntimeError("killed")
        self.store.insert(table, *args, **kwargs)


def store_event(store: EventStore, workspace_id: str, raw: dict[str, Any], processed: datetime) -> None:
    rows = build_rows(workspace_id, "track", raw, processed)
    store.insert("user_events_v2", [row.values(processed) for row in rows], EVENT_COLUMNS, EVENT_COLUMN_TYPES)


def send(store: EventStore, workspace_id: str, message: Message, *, user: str = "ada") -> None:
    variant = {"type": message.channel, "to": "x", "provider": {"type": f"P-{message.channel}"}}
    properties = {"messageId": message.id, "templateId": "t-1", "journeyId": "j-1", "nodeId": message.node,
                  "variant": variant}  # fmt: skip
    raw: dict[str, Any] = {"userId": user, "messageId": message.id, "event": "DFInternalMessageSent",
                           "timestamp": START.isoformat(), "properties": properties}  # fmt: skip
    if message.hidden:
        raw["context"] = {"hidden": True}
    store_event(store, workspace_id, raw, START + timedelta(minutes=message.minute))


def report(
    store: EventStore, workspace_id: str, message: Message, status: str, copy: int, *, user: str = "ada"
) -> None:
    raw = {"userId": user, "messageId": f"{status}:{message.id}:{copy}", "event": status,
           "timestamp": START.isoformat(), "properties": {"messageId": message.id}}  # fmt: skip
    store_event(store, workspace_id, raw, START + timedelta(minutes=10))


def pending_pairs(store: EventStore, workspace_id: str) -> int:
    [(count,)] = store.query(
        "SELECT count() FROM (SELECT message_key, mask FROM delivery_status_pending"
        " WHERE workspace_id = {w:String} GROUP BY message_key, mask HAVING sum(pending) != 0)",
        {"w": workspace_id},
    )
    return int(count)


def expected_counts(reached: dict[Message, set[str]], keep: set[str]) -> dict[str, int]:
    kept = [states | {"sent"} for states in reached.values() if not keep or keep & (states | {"sent"})]
    return {
        "sent": len(kept),
        "reached": sum(bool(states & {"delivered", "opened", "clicked"}) for states in kept),
        "delivered": sum("delivered" in states for states in kept),
        "opens": sum(bool(states & {"opened", "clicked"}) for states in kept),
        "clicks": sum("clicked" in states for states in kept),
        "bounces": sum("bounced" in states for states in kept),
    }


def assert_analysis_matches(store: EventStore, workspace_id: str, stored: dict[Message, set[str]]) -> None:
    """Analysis counts the stored messages that are not hidden, each with the states it reached."""
    sent = {message: states for message, states in stored.items() if not message.hidden}
    kinds: tuple[set[MessageState], ...] = (set(), {"opened"}, {"delivered", "bounced"}, {"sent"})
    for keep in kinds:
        where = AnalysisFilter(SentFilter(start=START, end=START + timedelta(minutes=5)), sorted(keep))
        expected = expected_counts(sent, set(keep))
        email = summary(store, workspace_id, where, channel="Email")["summary"]
        sms = summary(store, workspace_id, where, channel="Sms")["summary"]
        assert email["sent"] + sms["sent"] == expected["sent"]
        assert summary(store, workspace_id, where)["summary"] == {**NOTHING, "sent": expected["sent"]}
        assert email["deliveries"] + sms["deliveries"] == sum(
            expected_counts({m: s for m, s in sent.items() if m.channel == channel}, set(keep))[field]
            for channel, field in (("Email", "reached"), ("Sms", "delivered"))
        )
        assert email["bounces"] + sms["bounces"] == expected["bounces"]
        points = chart_data(store, workspace_id, where, granularity="1minute", group_by="messageState")[
            "data"
        ]
        by_state = {state: 0 for state in STATES}
        per_minute: dict[tuple[int, str], int] = {}
        for point in points:
            by_state[point["groupKey"]] += point["count"]
            per_minute[(int(point["timestamp"][14:16]), point["groupKey"])] = point["count"]
        kept = {m: s | {"sent"} for m, s in sent.items() if not keep or keep & (s | {"sent"})}
        assert by_state == {state: sum(state in s for s in kept.values()) for state in STATES}
        expected_minutes: dict[tuple[int, str], int] = {}
        for message, states in kept.items():
            for state in states:
                expected_minutes[(message.minute, state)] = (
                    expected_minutes.get((message.minute, state), 0) + 1
                )
        assert per_minute == expected_minutes
    nodes = journeys_node_counts(store, workspace_id, ["j-1"])
    expected_nodes: dict[str, dict[str, int]] = {}
    for node in sorted({message.node for message in sent}):
        counts = expected_counts({m: s for m, s in sent.items() if m.node == node}, set())
        expected_nodes[node] = {"sent": counts["sent"], "delivered": counts["reached"],
                                "opened": counts["opens"], "clicked": counts["clicks"],
                                "bounced": counts["bounces"]}  # fmt: skip
    assert nodes.get("j-1", {}) == expected_nodes


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Message], list[tuple[Any, ...]]]:
    count = draw(st.integers(1, 5))
    messages = [
        Message(
            f"m-{i}",
            draw(st.integers(0, 4)),
            draw(st.sampled_from(["Email", "Sms"])),
            f"n-{i % 2}",
            hidden=draw(st.booleans()) if i == count - 1 else False,
        )
        for i in range(count)
    ]
    steps: list[tuple[Any, ...]] = [("send", m) for m in messages]
    for _ in range(draw(st.integers(0, 10))):
        steps.append(("report", draw(st.sampled_from(messages)), draw(st.sampled_from(sorted(STATUSES)))))
    for _ in range(draw(st.integers(0, 3))):
        steps.append((draw(st.sampled_from(["fold", "crash"])),))
    return messages, draw(st.permutations(steps))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_analysis_counts_what_the_status_events_say_whatever_the_order(
    event_store: EventStore, history: tuple[list[Message], list[tuple[Any, ...]]]
) -> None:
    messages, steps = history
    workspace_id = str(uuid.uuid4())
    reached: dict[Message, set[str]] = {message: set() for message in messages}
    sent: set[Message] = set()
    for position, step in enumerate(steps):
        if step[0] == "send":
            send(event_store, workspace_id, step[1])
            sent.add(step[1])
        elif step[0] == "report":
            # A status repeated under the same message id is stored twice: it still counts once.
            report(event_store, workspace_id, step[1], step[2], copy=position % 2)
            reached[step[1]] |= STATUSES[step[2]]
        elif step[0] == "fold":
            fold_pending_statuses(event_store, workspace_id)
        else:
            # Dies before cancelling, if there was anything pending.
            with contextlib.suppress(RuntimeError):
                fold_pending_statuses(CrashingStore(event_store), workspace_id)  # type: ignore[arg-type]
        if step[0] in ("fold", "crash") or position == len(steps) // 2:
            assert_analysis_matches(event_store, workspace_id, {m: reached[m] for m in sent})
    fold_pending_statuses(event_store, workspace_id)
    assert_analysis_matches(event_store, workspace_id, reached)
    assert pending_pairs(event_store, workspace_id) == 0


def test_a_fold_records_each_change_once(event_store: EventStore) -> None:
    workspace_id = str(uuid.uuid4())
    message = Message("m-1", 0, "Email", "n-1")
    send(event_store, workspace_id, message)
    report(event_store, workspace_id, message, "DFEmailOpened", copy=0)
    report(event_store, workspace_id, message, "DFEmailOpened", copy=1)

    assert fold_pending_statuses(event_store, workspace_id) == 1
    assert fold_pending_statuses(event_store, workspace_id) == 0
    report(event_store, workspace_id, message, "DFEmailOpened", copy=2)  # no new state
    assert fold_pending_statuses(event_store, workspace_id) == 0
    assert event_store.query(
        "SELECT sent, from_mask, to_mask FROM sent_message_facts WHERE workspace_id = {w:String}"
        " ORDER BY sent DESC",
        {"w": workspace_id},
    ) == [(1, 0, 0), (0, 0, 2)]


def test_deleting_a_user_takes_their_messages_out_of_analysis(
    event_store: EventStore, sessions: sessionmaker[Session]
) -> None:
    workspace_id = str(uuid.uuid4())
    kept, gone = Message("m-1", 0, "Email", "n-1"), Message("m-2", 1, "Email", "n-1")
    gone_later = Message("m-3", 2, "Email", "n-1")
    for message, user in ((kept, "ada"), (gone, "bob"), (gone_later, "bob")):
        send(event_store, workspace_id, message, user=user)
        report(event_store, workspace_id, message, "DFEmailOpened", copy=0, user=user)
    fold_pending_statuses(event_store, workspace_id)
    report(event_store, workspace_id, gone_later, "DFEmailClicked", copy=0, user="bob")

    with sessions.begin() as session:
        delete_users(session, event_store, workspace_id, ["bob"])

    assert_analysis_matches(event_store, workspace_id, {kept: {"opened"}})
    assert pending_pairs(event_store, workspace_id) == 0


def test_a_fold_in_batches_takes_every_state_of_a_message_in_one_batch(
    event_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_facts, "FOLD_BATCH", 3)  # every batch boundary cuts a message
    workspace_id = str(uuid.uuid4())
    messages = [Message(f"m-{i}", i, "Email", "n-1") for i in range(4)]
    for message in messages:
        send(event_store, workspace_id, message)
        for status in ("DFEmailDelivered", "DFEmailOpened"):
            report(event_store, workspace_id, message, status, copy=0)

    fold_pending_statuses(event_store, workspace_id)

    assert pending_pairs(event_store, workspace_id) == 0
    assert_analysis_matches(event_store, workspace_id, dict.fromkeys(messages, {"delivered", "opened"}))


def test_status_events_of_a_message_never_stored_are_dropped_once_they_waited_long_enough(
    event_store: EventStore,
) -> None:
    """A provider's webhook may report messages another system sent: their status events must not
    stay pending (joined by every analysis query) for ever, nor hold up those of a message stored late."""
    workspace_id = str(uuid.uuid4())
    known, unknown, late = (Message(f"m-{i}", i, "Email", "n-1") for i in range(3))
    send(event_store, workspace_id, known)
    for message in (known, unknown, late):
        report(event_store, workspace_id, message, "DFEmailOpened", copy=0)

    fold_pending_statuses(event_store, workspace_id)  # both unknown messages wait, as a late one must
    assert pending_pairs(event_store, workspace_id) == 2
    assert delivery_facts.has_pending_states(event_store, workspace_id)
    send(event_store, workspace_id, late)
    fold_pending_statuses(event_store, workspace_id)
    assert pending_pairs(event_store, workspace_id) == 1

    fold_pending_statuses(event_store, workspace_id, orphans_after=timedelta(0))
    assert pending_pairs(event_store, workspace_id) == 0
    assert not delivery_facts.has_pending_states(event_store, workspace_id)
    assert_analysis_matches(event_store, workspace_id, {known: {"opened"}, late: {"opened"}})


# Ranges over the five hours from START: whole hours, edges within hours, an end on the hour, none.
RANGES = (
    (START, START + timedelta(hours=5)),
    (START + timedelta(minutes=10), START + timedelta(hours=4, minutes=50)),
    (START + timedelta(minutes=30), START + timedelta(hours=2)),
    (START + timedelta(hours=1, minutes=5), START + timedelta(hours=1, minutes=40)),
    # Whole hours only, up to their last millisecond (a message is on the next hour), or within it.
    (START, START + timedelta(hours=5, milliseconds=-1)),
    (START + timedelta(hours=1), START + timedelta(hours=5, microseconds=-500)),
    (None, None),
)


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_whole_hours_are_counted_from_the_hourly_counts_exactly(
    event_store: EventStore,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    start: datetime | None,
    end: datetime | None,
) -> None:
    monkeypatch.setattr(delivery_facts, "HOURLY_ABOVE", timedelta(0))  # read them for any range
    workspace_id = str(uuid.uuid4())
    # Every 25 minutes from START: on the hour, within hours and on the last range's end.
    messages = [Message(f"m-{i}", 25 * i, "Sms" if i % 3 == 0 else "Email", f"n-{i % 2}") for i in range(13)]
    reached: dict[Message, set[str]] = {}
    for i, message in enumerate(messages):
        user = "bob" if i % 4 == 1 else "ada"
        send(event_store, workspace_id, message, user=user)
        first = "DFSmsDelivered" if message.channel == "Sms" else "DFEmailOpened"
        report(event_store, workspace_id, message, first, copy=0, user=user)
        if user == "ada":
            reached[message] = set(STATUSES[first])
    fold_pending_statuses(event_store, workspace_id)
    for message in messages[::2]:  # left pending
        later = "DFSmsFailed" if message.channel == "Sms" else "DFEmailClicked"
        report(event_store, workspace_id, message, later, copy=0, user="ada" if message in reached else "bob")
        if message in reached:
            reached[message] |= STATUSES[later]
    with sessions.begin() as session:
        delete_users(session, event_store, workspace_id, ["bob"])
    stored = {
        message: states | {"sent"}
        for message, states in reached.items()
        if (start is None or START + timedelta(minutes=message.minute) >= start)
        and (end is None or START + timedelta(minutes=message.minute) <= end)
    }
    where = AnalysisFilter(SentFilter(start=start, end=end))

    if start is not None and end is not None:
        points = chart_data(event_store, workspace_id, where, granularity="1hour", group_by="messageState")
        per_hour: dict[tuple[int, str], int] = {}
        for message, states in stored.items():
            for state in states:
                key = (10 + message.minute // 60, state)
                per_hour[key] = per_hour.get(key, 0) + 1
        assert {(int(p["timestamp"][11:13]), p["groupKey"]): p["count"] for p in points["data"]} == per_hour
        by_channel = chart_data(event_store, workspace_id, where, granularity="1day", group_by="channel")
        channels = {p["groupKey"]: p["count"] for p in by_channel["data"]}
        assert channels == {c: n for c in ("Email", "Sms") if (n := sum(m.channel == c for m in stored))}
    # summary field -> the state it counts, per channel
    for channel, fields in (("Email", {"opens": "opened", "clicks": "clicked"}),
                            ("Sms", {"deliveries": "delivered", "bounces": "bounced"})):  # fmt: skip
        numbers = summary(event_store, workspace_id, where, channel=channel)["summary"]
        reached_states = [states for message, states in stored.items() if message.channel == channel]
        assert numbers["sent"] == len(reached_states)
        for field, state in fields.items():
            assert numbers[field] == sum(state in states for states in reached_states), field


def test_a_range_holding_a_whole_hour_reads_the_hourly_counts(
    event_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_facts, "HOURLY_ABOVE", timedelta(hours=1))
    send(event_store, "w-1", Message("m-1", 70, "Email", "n-1"))
    params = Parameters()
    where = SentFilter(
        start=START + timedelta(minutes=10), end=START + timedelta(hours=2), channels=["Email"]
    )
    sql = facts_sql("w-1", where, params, ("processing_time", "channel_type"), by_hours=True)

    plan = "\n".join(row[0] for row in event_store.query(f"EXPLAIN projections = 1 {sql}", params.values))

    assert "ReadFromMergeTree (hourly)" in plan


def test_a_range_of_whole_hours_reads_nothing_but_the_hourly_counts(event_store: EventStore) -> None:
    """However short: the counts are then the only read, never a second one."""
    send(event_store, "w-1", Message("m-1", 70, "Email", "n-1"))
    params = Parameters()
    where = SentFilter(start=START, end=START + timedelta(hours=2, milliseconds=-1))
    sql = facts_sql("w-1", where, params, ("processing_time",), with_states=False, by_hours=True)

    plan = "\n".join(row[0] for row in event_store.query(f"EXPLAIN projections = 1 {sql}", params.values))

    assert plan.count("ReadFromMergeTree") == 1
    assert "ReadFromMergeTree (hourly)" in plan
