"""Computing one segment or user property for one period, incrementally (Dittofeed §9.3).

A period covers events with `processing_time` in (`since`, `now`]; `since` is None on the first
period of a definition version, which then reads all history. Each period:

1. adds, per state, the aggregates of the period's matching events to `computed_property_state_v4`
   (or `add_states` has, for several targets at once);
2. re-evaluates the users that can have changed (see `_universe`) and inserts an assignment for each
   whose value changed, all stamped `assigned_at = now` (the change signal later consumers read);
3. is recorded (`record_periods`), by the caller: the compute loop records all of a run's periods in
   one insert.

Merging partial aggregates is order-independent, so any split of history into periods yields the
same assignments as one full recompute. A period that ran but was not recorded (the process died
first) runs again: its states are added twice, which no reader of them can tell (latest value,
distinct count, whether there is a row, distinct or earliest grouped values), and its assignments are
already current, so none changes again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from engine.compute.compile import Compiled, StateSpec
from engine.storage.event_store import EventStore

Kind = Literal["segment", "user_property"]
STEP = "ComputeAssignments"
# A period's state and assignment inserts hold one row per key already (they are grouped by it), so
# merging each inserted block by key, as the (Aggregating|Replacing)MergeTree would, finds nothing to
# merge; it cost a fifth of a state insert. Readers merge by key themselves.
_NO_MERGE_ON_INSERT = " SETTINGS optimize_on_insert = 0"
_EMPTY = "''"
# The order of "latest": event time, then a hash of the message id, so that any merge order agrees.
_LATEST = "bitShiftLeft(toInt128(toUnixTimestamp64Milli(event_time)), 64) + cityHash64(message_id)"


@dataclass(frozen=True)
class Target:
    """A segment or user property at one definition version, compiled."""

    workspace_id: str
    kind: Kind
    property_id: str
    version: str
    compiled: Compiled


def compute_period(
    store: EventStore,
    target: Target,
    *,
    since: datetime | None,
    now: datetime,
    threads: int | None = None,
    states_added: bool = False,
) -> None:
    """Run one period for `target` (not recorded): its changed assignments are those stamped `now`.
    `threads` caps the ClickHouse threads of each statement (None: the server's own setting);
    `states_added` says `add_states` has added the period's states already."""
    settings = _settings(threads)
    parameters: dict[str, Any] = {
        **target.compiled.parameters,
        "workspace": target.workspace_id,
        "kind": target.kind,
        "property": target.property_id,
        "now": now,
    }
    window = "processing_time <= {now:DateTime64(3, 'UTC')}"
    if since is not None:
        window += " AND processing_time > {since:DateTime64(3, 'UTC')}"
        parameters["since"] = since
    for index, spec in enumerate(target.compiled.states):
        if not states_added:
            _insert_state(store, spec, window, parameters, settings)
        parameters[f"s{index}"] = spec.state_id
    parameters["states"] = [spec.state_id for spec in target.compiled.states]
    full = since is None
    stored_without_state = not full and _stored_without_state(store, target, parameters)
    universe = _universe(target, window, full=full, stored_without_state=stored_without_state)
    _assign(store, target, universe, parameters, settings, full=full)


def add_states(
    store: EventStore,
    targets: Sequence[Target],
    *,
    since: datetime,
    now: datetime,
    threads: int | None = None,
) -> None:
    """Add the states of one period, (`since`, `now`], of several targets in one statement: one scan
    of the period's events and one part, where `compute_period` runs a statement per state. An
    incremental period's events are few, so each statement's fixed cost is most of its time (11
    states: 29 ms at once against 72 ms one by one). The states are the same `_insert_state` adds,
    with every aggregate kept (empty where a state reads none: -If with a false condition)."""
    parameters: dict[str, Any] = {"workspace": targets[0].workspace_id, "now": now, "since": since}
    elements: list[str] = []
    keys: dict[str, list[Any]] = {"kinds": [], "properties": [], "states": [], "counted": [], "grouped": []}
    for number, target in enumerate(targets):
        # Each target's own parameters, renamed apart (definitions' values are only ever parameters).
        def own(sql: str, number: int = number) -> str:
            return re.sub(r"\{(c\d+):", rf"{{t{number}_\1:", sql)

        parameters.update({f"t{number}_{name}": value for name, value in target.compiled.parameters.items()})
        for spec in target.compiled.states:
            for key, value in zip(
                keys,
                (target.kind, target.property_id, spec.state_id, spec.counted, bool(spec.grouped)),
                strict=True,
            ):
                keys[key].append(value)
            bucket = _bucket(spec)
            elements.append(
                f"if(({own(spec.match)}){_recent(spec, bucket)},"
                f" tuple({len(elements) + 1}, {own(spec.value)}, {own(spec.grouped) or _EMPTY}, {bucket}),"
                f" tuple(0, '', '', toDateTime64(0, 3, 'UTC')))"
            )
    if not elements:
        return
    parameters.update(keys)
    store.command(
        "INSERT INTO computed_property_state_v4 (workspace_id, type, computed_property_id, state_id, user_id,"
        " last_value, unique_count, grouped_values, event_time, computed_at)"
        " SELECT {workspace:String}, {kinds:Array(String)}[i], {properties:Array(String)}[i],"
        " {states:Array(String)}[i], user_or_anonymous_id,"
        f" argMaxIfState(value, {_LATEST}, value != ''), uniqStateIf(message_id, {{counted:Array(Bool)}}[i]),"
        " groupArrayStateIf(grouped, {grouped:Array(Bool)}[i]), bucket, {now:DateTime64(3, 'UTC')}"
        " FROM (SELECT user_or_anonymous_id, event_time, message_id, state.1 AS i, state.2 AS value,"
        " state.3 AS grouped, state.4 AS bucket FROM user_events_v2"
        f" ARRAY JOIN arrayFilter(x -> x.1 != 0, [{', '.join(elements)}]) AS state"
        " WHERE workspace_id = {workspace:String} AND processing_time <= {now:DateTime64(3, 'UTC')}"
        " AND processing_time > {since:DateTime64(3, 'UTC')})"
        f" GROUP BY i, user_or_anonymous_id, bucket{_settings(threads)}",
        parameters,
    )


def _settings(threads: int | None) -> str:
    return _NO_MERGE_ON_INSERT + (f", max_threads = {int(threads)}" if threads else "")


def _bucket(spec: StateSpec) -> str:
    if spec.bucket_seconds:
        return f"toStartOfInterval(event_time, INTERVAL {int(spec.bucket_seconds)} SECOND)"
    return "toDateTime64(0, 3, 'UTC')"


def _recent(spec: StateSpec, bucket: str) -> str:
    """The test that `bucket` (a state row's bucketed time) is inside the state's window at `now`.
    It decides both what a state counts (`_state_columns`) and what it keeps: a bucket older than the
    window never counts again (`now` only grows)."""
    if not spec.window_seconds:
        return ""
    return f" AND {bucket} >= {_window_start(spec, 'now')}"


def _window_start(spec: StateSpec, clock: str) -> str:
    """The start of the state's window when the clock parameter `clock` is the time."""
    return f"subtractSeconds({{{clock}:DateTime64(3, 'UTC')}}, {int(spec.window_seconds)})"


def version_of(definition_updated_at: datetime) -> str:
    """A definition's version: when it last changed, in epoch milliseconds."""
    return str(int(definition_updated_at.timestamp() * 1000))


def last_period(
    store: EventStore, workspace_id: str, property_id: str, version: str | None = None, *, step: str = STEP
) -> datetime | None:
    """Where the last `step` period of the property (at `version`, if given) ended, if there was one."""
    return LastPeriods.read(store, workspace_id, [property_id]).of(property_id, version, step=step)


class LastPeriods:
    """Where each step of some properties last ended (at each version), read in one query."""

    def __init__(self, ends: dict[tuple[str, str, str], datetime]) -> None:
        self._ends = ends  # (property id, step, version) -> the latest period_to

    @classmethod
    def read(cls, store: EventStore, workspace_id: str, property_ids: Sequence[str]) -> LastPeriods:
        rows = store.query(
            "SELECT computed_property_id, step, version, max(period_to) FROM computed_property_periods"
            " WHERE workspace_id = {workspace:String} AND computed_property_id IN {properties:Array(String)}"
            " GROUP BY computed_property_id, step, version",
            {"workspace": workspace_id, "properties": list(property_ids)},
        )
        return cls({(str(p), str(s), str(v)): end for p, s, v, end in rows})

    def of(self, property_id: str, version: str | None = None, *, step: str = STEP) -> datetime | None:
        """Where the last `step` period of the property (at `version`, if given) ended, as read."""
        ends = [
            end
            for (prop, at_step, at_version), end in self._ends.items()
            if prop == property_id and at_step == step and version in (None, at_version)
        ]
        return max(ends, default=None)


def record_periods(store: EventStore, periods: Sequence[tuple[Target, str]], now: datetime) -> None:
    """Record that each (target, step) period ended at `now`."""
    store.insert(
        "computed_property_periods",
        [
            [target.workspace_id, target.kind, target.property_id, target.version, step, now]
            for target, step in periods
        ],
        ("workspace_id", "type", "computed_property_id", "version", "step", "period_to"),
        (
            "String",
            "Enum8('user_property' = 1, 'segment' = 2)",
            "String",
            "String",
            "String",
            "DateTime64(3, 'UTC')",
        ),
    )


def _insert_state(
    store: EventStore, spec: StateSpec, window: str, parameters: dict[str, Any], settings: str
) -> None:
    bucket = _bucket(spec)
    # Only the aggregates the definition reads: a column left out of the insert holds an empty state.
    aggregates = {}
    if spec.value != _EMPTY:
        aggregates["last_value"] = f"argMaxIfState(value, {_LATEST}, value != '')"
    if spec.counted:
        aggregates["unique_count"] = "uniqState(message_id)"
    if spec.grouped:
        aggregates["grouped_values"] = "groupArrayState(grouped)"
    columns = "".join(f" {column}," for column in aggregates)
    states = "".join(f" {aggregate}," for aggregate in aggregates.values())
    grouped = f", {spec.grouped} AS grouped" if spec.grouped else ""
    store.command(
        "INSERT INTO computed_property_state_v4 (workspace_id, type, computed_property_id, state_id, user_id,"
        f"{columns} event_time, computed_at)"
        " SELECT {workspace:String}, {kind:String}, {property:String}, {state:String}, user_or_anonymous_id,"
        f"{states} {bucket} AS bucket, {{now:DateTime64(3, 'UTC')}}"
        # Only the columns the aggregates need: message_raw is most of a row's bytes.
        f" FROM (SELECT user_or_anonymous_id, event_time, message_id, {spec.value} AS value{grouped}"
        f" FROM user_events_v2 WHERE workspace_id = {{workspace:String}} AND {window}"
        f" AND ({spec.match}){_recent(spec, bucket)})"
        f" GROUP BY user_or_anonymous_id, bucket{settings}",
        {**parameters, "state": spec.state_id},
    )


def _universe(target: Target, window: str, *, full: bool, stored_without_state: bool) -> str:
    """SQL for the ids of the users this period re-evaluates (with `_assign`'s parameters).

    A full recompute re-evaluates every user with events. Otherwise a user's value can only have
    changed when their states did, or the clock moved on what the definition reads, or they are new
    to it; so a period re-evaluates the users
    - with events this period that one of the states matches (their states changed), or with any
      event this period when a user without state gets a value stored (`stored_without_state`: a
      user new to the definition gets the assignment a full recompute would give them);
    - with state, when the expression reads the clock (a trait's time window, HasBeen);
    - whose state buckets left a window during the period (Performed within a time window).
    """
    with_events = (
        "SELECT DISTINCT user_or_anonymous_id AS user_id FROM user_events_v2"
        f" WHERE workspace_id = {{workspace:String}} AND {window}"
    )
    if full:
        return with_events
    compiled = target.compiled
    if stored_without_state:
        parts = [with_events]
    else:
        parts = [
            with_events
            + " AND ("
            + (" OR ".join(f"({spec.match})" for spec in compiled.states) or "false")
            + ")"
        ]
    with_state = (
        "SELECT DISTINCT user_id FROM computed_property_state_v4 WHERE workspace_id = {workspace:String}"
        " AND type = {kind:String} AND computed_property_id = {property:String}"
    )
    if compiled.reads_clock:
        parts.append(f"{with_state} AND state_id IN {{states:Array(String)}}")
    else:
        for index, spec in enumerate(compiled.states):
            if spec.window_seconds:
                # Counted at the last period's end (`since`), not at `now`: see `_recent`.
                parts.append(
                    f"{with_state} AND state_id = {{s{index}:String}}"
                    f" AND event_time >= {_window_start(spec, 'since')}"
                    f" AND event_time < {_window_start(spec, 'now')}"
                )
    return " UNION DISTINCT ".join(parts)


def _stored_without_state(store: EventStore, target: Target, parameters: dict[str, Any]) -> bool:
    """Whether a user with no state at all gets a value stored (a member of an opt-out group, of
    Everyone), computed by ClickHouse itself on the columns the states' LEFT JOIN gives such a user.
    A definition reading the user id may store a value for some of them."""
    if target.compiled.reads_user_id:
        return True
    no_state = ", ".join(
        f"{empty} AS {name}"
        for index, spec in enumerate(target.compiled.states)
        for name, _, empty in _state_columns(index, spec)
    )
    [(stored,)] = store.query(
        f"SELECT {_worth_storing(target, _new_value(target))}"
        + (f" FROM (SELECT {no_state})" if no_state else ""),
        parameters,
    )
    return bool(stored)


def _new_value(target: Target) -> str:
    """The user's new value, over their merged state columns."""
    if target.kind == "segment":
        return f"toBool({target.compiled.expression})"
    return target.compiled.expression


def _worth_storing(target: Target, value: str) -> str:
    """Whether a user never assigned before gets `value` stored: a full recompute stores memberships
    and values, never a user's absence from a segment or an empty value."""
    return value if target.kind == "segment" else f"({value}) != ''"


def _state_columns(index: int, spec: StateSpec) -> list[tuple[str, str, str]]:
    """The merged columns of the `index`th state, each as (name, its merge of the user's state rows,
    its value when the user has none: what the states' LEFT JOIN gives such a user)."""
    state = f"state_id = {{s{index}:String}}"
    columns = [(f"s{index}_n", f"countIf({state})", "toUInt64(0)")]
    if spec.value != _EMPTY:
        columns.append((f"s{index}_v", f"argMaxMergeIf(last_value, {state})", "''"))
    if spec.counted:
        recent = _recent(spec, "event_time")
        columns.append((f"s{index}_c", f"uniqMergeIf(unique_count, {state}{recent})", "toUInt64(0)"))
    if spec.grouped:
        columns.append(
            (f"s{index}_g", f"groupArrayMergeIf(grouped_values, {state})", "CAST([], 'Array(String)')")
        )
    return columns


def _assign(
    store: EventStore,
    target: Target,
    universe: str,
    parameters: dict[str, Any],
    settings: str,
    *,
    full: bool,
) -> None:
    # On a full recompute every user with state or an assignment is in the universe anyway, so the
    # joins below need no `IN (universe)` filters, and the universe is read once instead of three times.
    among_universe = "" if full else f" AND user_id IN ({universe})"
    compiled = target.compiled
    merged = [
        f"{merge} AS {name}"
        for index, spec in enumerate(compiled.states)
        for name, merge, _ in _state_columns(index, spec)
    ]
    # Every key column up to state_id is bound, so only this version's states are read.
    states = (
        "SELECT user_id, " + ", ".join(merged) + " FROM computed_property_state_v4"
        " WHERE workspace_id = {workspace:String} AND type = {kind:String}"
        " AND computed_property_id = {property:String} AND state_id IN {states:Array(String)}"
        f"{among_universe} GROUP BY user_id"
        if merged
        else "SELECT '' AS user_id WHERE false"
    )
    if target.kind == "segment":
        segment_value, property_value, changed = "new_value", "''", "current.segment_value != new_value"
    else:
        segment_value, property_value = "false", "new_value"
        changed = "current.user_property_value != new_value"
    current = (
        "SELECT user_id, argMax(segment_value, assigned_at) AS segment_value,"
        " argMax(user_property_value, assigned_at) AS user_property_value, true AS known"
        " FROM computed_property_assignments_v2"
        " WHERE workspace_id = {workspace:String} AND type = {kind:String}"
        f" AND computed_property_id = {{property:String}}{among_universe} GROUP BY user_id"
    )
    select = (
        "SELECT {workspace:String}, {kind:String}, {property:String}, user_id,"
        f" {segment_value}, {property_value}, {{now:DateTime64(3, 'UTC')}}, {{now:DateTime64(3, 'UTC')}}"
        f" FROM (SELECT universe.user_id AS user_id, {_new_value(target)} AS new_value"
        f" FROM ({universe}) AS universe LEFT JOIN ({states}) AS states ON states.user_id = universe.user_id)"
        f" AS evaluated LEFT JOIN ({current}) AS current ON current.user_id = evaluated.user_id"
        f" WHERE if(current.known, {changed}, {_worth_storing(target, 'new_value')})"
    )
    store.command(
        "INSERT INTO computed_property_assignments_v2 (workspace_id, type, computed_property_id, user_id,"
        f" segment_value, user_property_value, max_event_time, assigned_at) {select}{settings}",
        parameters,
    )


def list_periods(store: EventStore, workspace_id: str) -> list[tuple[str, str, datetime]]:
    """(property id, kind, last period end) for everything computed in the workspace."""
    rows = store.query(
        "SELECT computed_property_id, toString(type), max(period_to) FROM computed_property_periods"
        " WHERE workspace_id = {workspace:String} AND step = {step:String}"
        " GROUP BY computed_property_id, type ORDER BY computed_property_id",
        {"workspace": workspace_id, "step": STEP},
    )
    return [(str(a), str(b), c) for a, b, c in rows]
