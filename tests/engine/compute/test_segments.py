"""Every segment node and operator of Dittofeed §7.1, against hand-computed memberships."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from tests.engine.compute.conftest import NOW, History


def _entry(node: dict[str, Any], *nodes: dict[str, Any]) -> dict[str, Any]:
    return {"entryNode": {"id": "entry", **node}, "nodes": list(nodes)}


def _trait(operator: dict[str, Any], path: str = "plan") -> dict[str, Any]:
    return _entry({"type": "Trait", "path": path, "operator": operator})


@pytest.fixture
def traits(history: History) -> History:
    history.identify("paid", plan="paid", age=20, tags=["a", "b"])
    history.identify("free", plan="free", age="17", tags=["c"])
    history.identify("bare", name="no plan")
    history.track("tracked", "LOGIN")
    # Traits merge: a later identify without the path keeps the earlier value.
    history.identify("paid", name="Ann")
    return history


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (_trait({"type": "Equals", "value": "paid"}), {"paid"}),
        (_trait({"type": "NotEquals", "value": "paid"}), {"free", "bare"}),
        (_trait({"type": "Exists"}), {"paid", "free"}),
        (_trait({"type": "NotExists"}), {"bare"}),
        (_trait({"type": "Equals", "value": 20}, path="age"), {"paid"}),
        (_trait({"type": "GreaterThanOrEqual", "value": 18}, path="age"), {"paid"}),
        (_trait({"type": "LessThan", "value": 18}, path="age"), {"free"}),
        (_entry({"type": "Includes", "path": "tags", "item": "b"}), {"paid"}),
        (_entry({"type": "Everyone"}), {"paid", "free", "bare", "tracked"}),
    ],
    ids=lambda value: str(value)[:60] if isinstance(value, dict) else None,
)
def test_trait_operators(traits: History, definition: dict[str, Any], expected: set[str]) -> None:
    assert traits.segment(definition) == expected


def test_trait_value_is_the_latest_by_event_time(history: History) -> None:
    history.identify("u", at=NOW - timedelta(hours=1), plan="paid")
    history.identify("u", at=NOW - timedelta(hours=2), plan="free")  # arrives later, happened earlier
    assert history.segment(_trait({"type": "Equals", "value": "paid"})) == {"u"}


def test_within_and_absolute_timestamp(history: History) -> None:
    history.identify("recent", seen=(NOW - timedelta(hours=1)).isoformat())
    history.identify("old", seen=(NOW - timedelta(days=3)).isoformat())
    assert history.segment(_trait({"type": "Within", "windowSeconds": 86400}, path="seen")) == {"recent"}
    after = {"type": "AbsoluteTimestamp", "absoluteTimestamp": (NOW - timedelta(days=1)).isoformat()}
    assert history.segment(_trait({**after, "direction": "after"}, path="seen")) == {"recent"}
    assert history.segment(_trait({**after, "direction": "before"}, path="seen")) == {"old"}


@pytest.fixture
def trial_histories(history: History) -> History:
    day, hour = timedelta(days=1), timedelta(hours=1)
    history.identify("long", at=NOW - 3 * day, plan="trial")
    history.identify("recent", at=NOW - 5 * day, plan="free")
    history.identify("recent", at=NOW - 2 * hour, plan="trial")
    history.identify("recent", at=NOW - hour, plan="trial")  # setting it again does not restart the clock
    history.identify("changed", at=NOW - 3 * day, plan="trial")
    history.identify("changed", at=NOW - hour, plan="paid")
    history.identify("back", at=NOW - 5 * day, plan="trial")
    history.identify("back", at=NOW - 4 * day, plan="paid")
    history.identify("back", at=NOW - 3 * hour, plan="trial")
    history.identify("late", at=NOW - 3 * day, plan="trial")
    history.identify("late", at=NOW - 4 * day, plan="free")  # arrives last, happened before the trial
    history.identify("never", plan="free")
    return history


@pytest.mark.parametrize(("comparator", "expected"), [("GTE", {"long", "late"}), ("LT", {"recent", "back"})])
def test_has_been_measures_time_since_the_trait_took_its_value(
    trial_histories: History, comparator: str, expected: set[str]
) -> None:
    operator = {"type": "HasBeen", "comparator": comparator, "value": "trial", "windowSeconds": 86400}
    assert trial_histories.segment(_trait(operator)) == expected


def test_has_been_compares_numbers_as_written(history: History) -> None:
    history.identify("one", at=NOW - timedelta(days=2), level=1)
    history.identify("two", at=NOW - timedelta(days=2), level=2)
    operator = {"type": "HasBeen", "comparator": "GTE", "value": 1, "windowSeconds": 3600}
    assert history.segment(_trait(operator, path="level")) == {"one"}


@pytest.fixture
def logins(history: History) -> History:
    for _ in range(3):
        history.track("thrice", "LOGIN", plan="pro")
    history.track("once", "LOGIN", plan="free")
    history.track("once", "LOGOUT")
    history.track("old", "LOGIN", at=NOW - timedelta(days=10))
    history.identify("never")
    return history


def _performed(**node: Any) -> dict[str, Any]:
    return _entry({"type": "Performed", "event": "LOGIN", **node})


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (_performed(), {"once", "old"}),  # no operator means exactly `times` (1)
        (_performed(times=3), {"thrice"}),
        (_performed(times=1, timesOperator=">="), {"thrice", "once", "old"}),
        (_performed(times=2, timesOperator="<"), {"once", "old", "never"}),
        (_performed(times=0), {"never"}),
        (_performed(times=1, timesOperator=">=", withinSeconds=86400), {"thrice", "once"}),
        (
            _entry({"type": "Performed", "event": "LOG*", "times": 2, "timesOperator": ">="}),
            {"thrice", "once"},
        ),
        (
            _entry({"type": "Performed", "event": "*", "times": 1, "timesOperator": ">="}),
            {"thrice", "once", "old"},
        ),
        (
            _performed(
                times=1,
                timesOperator=">=",
                properties=[{"path": "plan", "operator": {"type": "Equals", "value": "pro"}}],
            ),
            {"thrice"},
        ),
    ],
)
def test_performed(logins: History, definition: dict[str, Any], expected: set[str]) -> None:
    assert logins.segment(definition) == expected


def test_last_performed_looks_at_the_latest_eligible_event(history: History) -> None:
    history.track("u1", "ORDER", status="open", channel="web")
    history.track("u1", "ORDER", status="paid", channel="app")
    history.track("u2", "ORDER", status="paid", channel="web")
    history.track("u2", "ORDER", status="open", channel="web")
    definition = _entry(
        {
            "type": "LastPerformed",
            "event": "ORDER",
            "whereProperties": [{"path": "channel", "operator": {"type": "Equals", "value": "web"}}],
            "hasProperties": [{"path": "status", "operator": {"type": "Equals", "value": "paid"}}],
        }
    )
    # u1's latest web order is "open"; u2's latest web order is "open" too.
    assert history.segment(definition) == set()
    history.track("u2", "ORDER", status="paid", channel="web")
    assert history.segment(definition) == {"u2"}


def test_email_broadcast_and_manual_nodes(history: History) -> None:
    history.track("opened", "DFEmailOpened", templateId="t1")
    history.track("other", "DFEmailOpened", templateId="t2")
    assert history.segment(_entry({"type": "Email", "event": "DFEmailOpened", "templateId": "t1"})) == {
        "opened"
    }
    history.track("in", "DFManualSegmentUpdate", segmentId="S", version=2, inSegment=1)
    history.track("stale", "DFManualSegmentUpdate", segmentId="S", version=1, inSegment=1)
    history.track("out", "DFManualSegmentUpdate", segmentId="S", version=2, inSegment=1)
    history.track("out", "DFManualSegmentUpdate", segmentId="S", version=2, inSegment=0)
    from engine.compute.compile import compile_segment
    from engine.compute.run import Target

    compiled = compile_segment(
        "00000000-0000-0000-0000-00000000000a", "m", _entry({"type": "Manual", "version": 2}), "1"
    )
    # The Manual node matches events naming its own segment id.
    history.track(
        "in2",
        "DFManualSegmentUpdate",
        segmentId="00000000-0000-0000-0000-00000000000a",
        version=2,
        inSegment=1,
    )
    history.compute(
        Target(history.workspace_id, "segment", "00000000-0000-0000-0000-00000000000a", "1", compiled), NOW
    )
    assert {
        u for u, v in history.assignments("00000000-0000-0000-0000-00000000000a").items() if v == "true"
    } == {"in2"}


def test_subscription_group_nodes(history: History) -> None:
    history.track("unsubscribed", "DFSubscriptionChange", subscriptionId="g", action="Unsubscribe")
    history.track("subscribed", "DFSubscriptionChange", subscriptionId="g", action="Subscribe")
    history.track("flipped", "DFSubscriptionChange", subscriptionId="g", action="Subscribe")
    history.track("flipped", "DFSubscriptionChange", subscriptionId="g", action="Unsubscribe")
    history.identify("silent")
    group = {"type": "SubscriptionGroup", "subscriptionGroupId": "g"}
    assert history.segment(_entry({**group, "subscriptionGroupType": "OptOut"})) == {"subscribed", "silent"}
    assert history.segment(_entry({**group, "subscriptionGroupType": "OptIn"})) == {"subscribed"}
    unsubscribed = _entry({"type": "SubscriptionGroupUnsubscribed", "subscriptionGroupId": "g"})
    assert history.segment(unsubscribed) == {"unsubscribed", "flipped"}


def test_random_bucket_is_md5_of_user_and_segment_name(history: History) -> None:
    users = [f"user-{n}" for n in range(40)]
    for user in users:
        history.identify(user)
    expected = {
        user
        for user in users
        if int.from_bytes(hashlib.md5(f"{user}Half".encode()).digest()[:8], "big") < int(0.5 * 2**64)  # noqa: S324
    }
    assert history.segment(_entry({"type": "RandomBucket", "percent": 0.5}), name="Half") == expected
    assert 5 < len(expected) < 35


def test_and_or_combine_children(traits: History) -> None:
    paid = {"id": "p", "type": "Trait", "path": "plan", "operator": {"type": "Equals", "value": "paid"}}
    free = {"id": "f", "type": "Trait", "path": "plan", "operator": {"type": "Equals", "value": "free"}}
    adult = {
        "id": "a",
        "type": "Trait",
        "path": "age",
        "operator": {"type": "GreaterThanOrEqual", "value": 18},
    }
    assert traits.segment(_entry({"type": "Or", "children": ["p", "f"]}, paid, free, adult)) == {
        "paid",
        "free",
    }
    assert traits.segment(_entry({"type": "And", "children": ["f", "a"]}, paid, free, adult)) == set()
    assert traits.segment(_entry({"type": "And", "children": ["p", "a"]}, paid, free, adult)) == {"paid"}


def test_a_member_who_stops_qualifying_gets_a_false_assignment(history: History) -> None:
    from engine.compute.compile import compile_segment
    from engine.compute.run import Target

    segment_id = "00000000-0000-0000-0000-0000000000b1"
    target = Target(
        history.workspace_id,
        "segment",
        segment_id,
        "1",
        compile_segment(segment_id, "s", _trait({"type": "Equals", "value": "paid"}), "1"),
    )
    history.identify("u", plan="paid")
    assert history.compute(target, NOW) == 1
    assert history.assignments(segment_id) == {"u": "true"}
    assert history.compute(target, NOW + timedelta(seconds=1)) == 0  # nothing new, nothing written
    history.clock = NOW + timedelta(seconds=1, milliseconds=500)
    history.identify("u", at=NOW + timedelta(seconds=1), plan="free")
    assert history.compute(target, NOW + timedelta(seconds=2)) == 1
    assert history.assignments(segment_id) == {"u": "false"}
