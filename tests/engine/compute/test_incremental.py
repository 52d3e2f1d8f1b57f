"""Computing period by period gives the same assignments as one full recompute, on random streams."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compute.compile import compile_segment, compile_user_property
from engine.compute.run import Target, add_states, compute_period, last_period
from engine.storage.event_store import EventStore
from tests.engine.compute.conftest import NOW, History
from tests.support.migrations import forget_migrations_from

SEGMENTS: list[dict[str, Any]] = [
    {
        "entryNode": {
            "id": "e",
            "type": "Trait",
            "path": "plan",
            "operator": {"type": "Equals", "value": "paid"},
        },
        "nodes": [],
    },
    {
        "entryNode": {"id": "e", "type": "Trait", "path": "plan", "operator": {"type": "NotExists"}},
        "nodes": [],
    },
    {
        "entryNode": {"id": "e", "type": "Performed", "event": "LOGIN", "times": 2, "timesOperator": ">="},
        "nodes": [],
    },
    {
        "entryNode": {"id": "e", "type": "Performed", "event": "LOGIN", "times": 1, "withinSeconds": 3600},
        "nodes": [],
    },
    {
        "entryNode": {
            "id": "e",
            "type": "Trait",
            "path": "plan",
            "operator": {"type": "HasBeen", "comparator": "LT", "value": "paid", "windowSeconds": 3600},
        },
        "nodes": [],
    },
    {
        "entryNode": {"id": "e", "type": "Or", "children": ["a", "b"]},
        "nodes": [
            {"id": "a", "type": "Trait", "path": "plan", "operator": {"type": "Equals", "value": "free"}},
            {"id": "b", "type": "Performed", "event": "BUY", "times": 1, "timesOperator": ">="},
        ],
    },
    # Values stored for users with no state at all: a user's first events, matching nothing, make
    # them members.
    {
        "entryNode": {
            "id": "e",
            "type": "SubscriptionGroup",
            "subscriptionGroupId": "g",
            "subscriptionGroupType": "OptOut",
        },
        "nodes": [],
    },
    {"entryNode": {"id": "e", "type": "RandomBucket", "percent": 0.5}, "nodes": []},
    {"entryNode": {"id": "e", "type": "Everyone"}, "nodes": []},
]
PROPERTIES: list[dict[str, Any]] = [
    {"type": "Trait", "path": "plan"},
    {"type": "Performed", "event": "BUY", "path": "amount"},
    {"type": "PerformedMany", "or": [{"event": "BUY"}]},
    {"type": "Id"},
]

events = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", "u4"]),
        st.sampled_from(["identify", "LOGIN", "BUY"]),
        st.sampled_from(["paid", "free", None]),
        st.integers(min_value=0, max_value=300),  # minutes before NOW
        st.booleans(),  # a period ends after this event
    ),
    min_size=1,
    max_size=25,
)


def _targets(workspace_id: str) -> list[Target]:
    targets = []
    for definition in SEGMENTS:
        segment_id = str(uuid.uuid4())
        targets.append(
            Target(
                workspace_id, "segment", segment_id, "1", compile_segment(segment_id, "s", definition, "1")
            )
        )
    for definition in PROPERTIES:
        property_id = str(uuid.uuid4())
        targets.append(
            Target(
                workspace_id,
                "user_property",
                property_id,
                "1",
                compile_user_property(property_id, definition, "1"),
            )
        )
    return targets


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=events)
def test_incremental_equals_full_recompute(event_store: EventStore, stream: list[Any]) -> None:
    history = History(event_store)
    incremental = _targets(history.workspace_id)
    full = _targets(history.workspace_id)
    for user, kind, plan, minutes_ago, period_ends in stream:
        at = NOW - timedelta(minutes=minutes_ago)
        if kind == "identify":
            history.identify(user, at=at, **({"plan": plan} if plan else {}))
        else:
            history.track(user, kind, at=at, amount=minutes_ago)
        if period_ends:
            # As the compute loop does: the states of periods going on from an earlier one are added
            # for every target at once.
            end = history.clock + timedelta(milliseconds=5)
            since = last_period(event_store, history.workspace_id, incremental[0].property_id, "1")
            if since is not None:
                add_states(event_store, incremental, since=since, now=end)
            for target in incremental:
                history.compute(target, end, states_added=since is not None)
    final = history.clock + timedelta(seconds=1)
    for target in incremental + full:
        history.compute(target, final)
    for a, b in zip(incremental, full, strict=True):
        assert _visible(history.assignments(a.property_id)) == _visible(history.assignments(b.property_id)), (
            a.compiled
        )


def _visible(assignments: dict[str, str]) -> dict[str, str]:
    # A user never assigned and a user assigned false/'' are the same to every reader.
    return {user: value for user, value in assignments.items() if value not in ("false", "")}


def test_states_dropped_by_a_schema_upgrade_are_computed_again_from_all_events(
    event_store: EventStore,
) -> None:
    history = History(event_store)
    segment_id = str(uuid.uuid4())
    twice = compile_segment(segment_id, "s", SEGMENTS[2], "1")  # LOGIN at least twice
    target = Target(history.workspace_id, "segment", segment_id, "1", twice)
    history.track("ada", "LOGIN", at=NOW - timedelta(hours=2))
    history.compute(target, history.clock + timedelta(milliseconds=5))
    assert history.assignments(segment_id) == {}

    # The store as it was before the state table it computed into (migration 10), then upgraded.
    forget_migrations_from(event_store, "computed_property_state_v4")
    event_store.migrate()
    history.track("ada", "LOGIN", at=NOW - timedelta(hours=1))

    assert history.compute(target, history.clock + timedelta(milliseconds=5)) == 1
    assert history.assignments(segment_id) == {"ada": "true"}


def test_a_windowed_count_forgets_events_leaving_the_window_with_nothing_new(event_store: EventStore) -> None:
    history = History(event_store)
    segment_id = str(uuid.uuid4())
    lately = compile_segment(segment_id, "s", SEGMENTS[3], "1")  # LOGIN within the last hour
    target = Target(history.workspace_id, "segment", segment_id, "1", lately)
    history.clock = NOW
    history.track("ada", "LOGIN", at=NOW)
    history.track("bob", "LOGIN", at=NOW + timedelta(minutes=50))
    assert history.compute(target, NOW + timedelta(minutes=55)) == 2

    assert history.compute(target, NOW + timedelta(minutes=80)) == 1  # no event since
    assert history.assignments(segment_id) == {"ada": "false", "bob": "true"}
    assert history.compute(target, NOW + timedelta(minutes=90)) == 0
    assert history.compute(target, NOW + timedelta(minutes=120)) == 1
    assert history.assignments(segment_id) == {"ada": "false", "bob": "false"}


def test_a_user_matching_no_state_gets_what_a_full_recompute_gives(event_store: EventStore) -> None:
    history = History(event_store)
    segment_id = str(uuid.uuid4())
    opted_out = compile_segment(segment_id, "s", SEGMENTS[6], "1")  # not unsubscribed from g
    target = Target(history.workspace_id, "segment", segment_id, "1", opted_out)
    history.identify("ada", plan="free")
    assert history.compute(target, history.clock + timedelta(milliseconds=5)) == 1

    history.track("bob", "LOGIN")  # bob's first event, which no state of the segment matches
    history.track("ada", "LOGIN")
    assert history.compute(target, history.clock + timedelta(milliseconds=5)) == 1
    assert history.assignments(segment_id) == {"ada": "true", "bob": "true"}


def test_a_period_run_again_after_dying_unrecorded_changes_nothing(event_store: EventStore) -> None:
    history = History(event_store)
    for user, minutes_ago in [("u1", 50), ("u2", 40), ("u1", 30), ("u3", 20), ("u2", 10)]:
        at = NOW - timedelta(minutes=minutes_ago)
        history.identify(user, at=at, plan="paid" if minutes_ago > 25 else "free")
        history.track(user, "BUY", at=at, amount=minutes_ago)
        history.track(user, "LOGIN", at=at)
    end = history.clock + timedelta(milliseconds=5)
    again, once = _targets(history.workspace_id), _targets(history.workspace_id)
    for target in again:
        compute_period(event_store, target, since=None, now=end)  # the process dies before recording

    later = end + timedelta(seconds=1)
    for target in again:
        assert history.compute(target, later) == 0, target.compiled  # the period again, and a second
    for target in once:
        history.compute(target, later)
    for a, b in zip(again, once, strict=True):
        assert history.assignments(a.property_id) == history.assignments(b.property_id), a.compiled
