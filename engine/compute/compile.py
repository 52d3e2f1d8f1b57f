"""Compiling segment and user-property definitions (Dittofeed §7.1, §7.2) into ClickHouse SQL.

A definition becomes a list of `StateSpec`s, one per node that reads events: which events it matches
and what it keeps of them, only what its expression reads (the latest value, the distinct message ids,
or every value). The states are merged per user into columns `s<i>_n` (how many state rows: > 0 when
the user has matching events), `s<i>_v` (latest value), `s<i>_c` (distinct count, inside the node's
time window) and `s<i>_g` (all values), and the definition's `expression` computes the segment's
boolean or the user property's JSON text from those columns. Every value from a definition is a bound
parameter.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from engine.json_paths import clickhouse_path

Definition = dict[str, Any]

_DAY = 86_400
_IDENTIFY = "event_type = 'identify'"
_ANY_TRACK = "event_type = 'track'"
_EMPTY = "''"


@dataclass(frozen=True)
class StateSpec:
    """One node's partial aggregate over `user_events_v2`."""

    state_id: str
    match: str  # boolean SQL over user_events_v2 columns
    value: str = "''"  # kept as the latest value (argMax by event_time), when not ''
    counted: bool = False  # keeps the distinct message ids (uniq), to count them
    grouped: str = ""  # kept as every value (groupArray), when set
    bucket_seconds: int = 0  # time bucket of event_time; 0 keeps one bucket
    window_seconds: int = 0  # only events this recent are kept (so counted); 0 = all


@dataclass
class Compiled:
    """A definition as SQL: its states and the expression over their merged columns."""

    states: list[StateSpec] = field(default_factory=list)
    expression: str = "false"
    parameters: dict[str, Any] = field(default_factory=dict)
    # The expression reads the clock (`now`) as well as the states (a node's time window is its
    # state's `window_seconds`).
    reads_clock: bool = False
    reads_user_id: bool = False  # the expression reads `user_id` itself, not only the states

    def bind(self, value: Any, kind: str) -> str:
        name = f"c{len(self.parameters)}"
        self.parameters[name] = value
        return f"{{{name}:{kind}}}"


def state_id(property_id: str, version: str, node_id: str) -> str:
    """Stable per definition version, so editing a definition starts its states afresh."""
    return str(uuid.uuid5(uuid.UUID(property_id), f"{version}:{node_id}"))


def compile_segment(segment_id: str, name: str, definition: Definition, version: str) -> Compiled:
    compiled = Compiled()
    nodes = {node["id"]: node for node in definition.get("nodes", [])}
    builder = _SegmentBuilder(compiled, segment_id, name, version, nodes)
    compiled.expression = builder.node(definition["entryNode"])
    return compiled


def compile_user_property(property_id: str, definition: Definition, version: str) -> Compiled:
    compiled = Compiled()
    builder = _PropertyBuilder(compiled, property_id, version)
    compiled.expression = builder.node(definition)
    return compiled


# -- shared SQL pieces -------------------------------------------------------------------------


def _raw_at(document: str, path_param: str) -> str:
    """The JSON text at a path of a JSON document, '' when absent or null."""
    query = f"JSON_QUERY({document}, {path_param})"
    return f"if({query} IN ('', '[null]'), '', substring({query}, 2, length({query}) - 2))"


def _text(raw: str) -> str:
    """A JSON value as text: strings unquoted, numbers and literals as written."""
    return f"if(startsWith({raw}, '\"'), JSONExtractString({raw}), {raw})"


def _property(name: str) -> str:
    return f"JSONExtractString(properties, '{name}')"


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _event_pattern(compiled: Compiled, pattern: str) -> str:
    if pattern in ("", "*"):
        return "true"
    if pattern.endswith("*"):
        return f"startsWith(event, {compiled.bind(pattern[:-1], 'String')})"
    return f"event = {compiled.bind(pattern, 'String')}"


def _track(compiled: Compiled, pattern: str) -> str:
    return f"event_type = 'track' AND {_event_pattern(compiled, pattern)}"


def _operator(compiled: Compiled, raw: str, operator: dict[str, Any], present: str) -> str:
    """A segment operator on a raw JSON value; `present` says the user has the kind of event at all."""
    kind = operator["type"]
    text = _text(raw)
    if kind == "Equals":
        return f"({raw} != '' AND {text} = {compiled.bind(_value_text(operator['value']), 'String')})"
    if kind == "NotEquals":
        value = compiled.bind(_value_text(operator["value"]), "String")
        return f"({present} AND ({raw} = '' OR {text} != {value}))"
    if kind == "Exists":
        return f"({raw} != '')"
    if kind == "NotExists":
        return f"({present} AND {raw} = '')"
    if kind in ("GreaterThanOrEqual", "LessThan"):
        symbol = ">=" if kind == "GreaterThanOrEqual" else "<"
        bound = compiled.bind(float(operator["value"]), "Float64")
        return f"coalesce(toFloat64OrNull({text}) {symbol} {bound}, false)"
    if kind == "Within":
        compiled.reads_clock = True
        window = compiled.bind(int(operator["windowSeconds"]), "UInt32")
        since = f"subtractSeconds({{now:DateTime64(3, 'UTC')}}, {window})"
        return f"coalesce(parseDateTime64BestEffortOrNull({text}, 3, 'UTC') >= {since}, false)"
    if kind == "AbsoluteTimestamp":
        symbol = ">=" if operator.get("direction", "after") == "after" else "<"
        moment = compiled.bind(operator["absoluteTimestamp"], "String")
        return (
            f"coalesce(parseDateTime64BestEffortOrNull({text}, 3, 'UTC') {symbol}"
            f" parseDateTime64BestEffort({moment}, 3, 'UTC'), false)"
        )
    raise ValueError(f"unsupported operator {kind}")


def _property_filters(compiled: Compiled, filters: list[dict[str, Any]] | None) -> str:
    conditions = [
        _operator(
            compiled,
            _raw_at("properties", compiled.bind(clickhouse_path(f["path"]), "String")),
            f["operator"],
            "true",
        )
        for f in filters or []
    ]
    return " AND ".join(conditions) if conditions else "true"


def _window_bucket(window_seconds: int) -> int:
    return max(1, min(_DAY, window_seconds // 10))


# -- segments ----------------------------------------------------------------------------------


class _SegmentBuilder:
    def __init__(self, compiled: Compiled, segment_id: str, name: str, version: str, nodes: dict[str, Any]):
        self.compiled, self.segment_id, self.name, self.version, self.nodes = (
            compiled,
            segment_id,
            name,
            version,
            nodes,
        )
        self.visiting: set[str] = set()

    def state(self, node: dict[str, Any], match: str, *, part: str = "", **kwargs: Any) -> int:
        node_id = f"{node['id']}:{part}" if part else node["id"]
        self.compiled.states.append(
            StateSpec(state_id(self.segment_id, self.version, node_id), match, **kwargs)
        )
        return len(self.compiled.states) - 1

    def node(self, node: dict[str, Any]) -> str:
        kind = node["type"]
        c = self.compiled
        if kind in ("And", "Or"):
            if node["id"] in self.visiting:
                raise ValueError(f"node {node['id']} is part of a cycle")
            self.visiting.add(node["id"])
            parts = [
                self.node(self.nodes[child]) for child in node.get("children", []) if child in self.nodes
            ]
            self.visiting.discard(node["id"])
            if not parts:
                return "false"
            return "(" + (" AND " if kind == "And" else " OR ").join(parts) + ")"
        if kind == "Trait" and node["operator"]["type"] == "HasBeen":
            return self.has_been(node)
        if kind in ("Trait", "Includes"):
            path = c.bind(clickhouse_path(node["path"]), "String")
            i = self.state(node, _IDENTIFY, value=_raw_at("properties", path))
            if kind == "Includes":
                item = c.bind(_value_text(node["item"]), "String")
                return f"arrayExists(x -> {_text('x')} = {item}, JSONExtractArrayRaw(s{i}_v))"
            return _operator(c, f"s{i}_v", node["operator"], f"s{i}_n > 0")
        if kind == "Performed":
            return self.performed(node)
        if kind == "LastPerformed":
            match = f"{_track(c, node['event'])} AND {_property_filters(c, node.get('whereProperties'))}"
            i = self.state(node, match, value="if(properties = '', '{}', properties)")
            checks = [
                _operator(
                    c, _raw_at(f"s{i}_v", c.bind(clickhouse_path(f["path"]), "String")), f["operator"], "true"
                )
                for f in node.get("hasProperties", [])
            ]
            return "(" + " AND ".join([f"s{i}_n > 0", *checks]) + ")"
        if kind == "Email":
            template = c.bind(node["templateId"], "String")
            match = f"{_track(c, node['event'])} AND JSONExtractString(properties, 'templateId') = {template}"
            return f"(s{self.state(node, match)}_n > 0)"
        if kind == "Broadcast":
            segment = c.bind(self.segment_id, "String")
            match = f"{_track(c, 'DFSegmentBroadcast')} AND {_property('segmentId')} = {segment}"
            return f"(s{self.state(node, match)}_n > 0)"
        if kind in ("SubscriptionGroup", "SubscriptionGroupUnsubscribed"):
            group = c.bind(node["subscriptionGroupId"], "String")
            match = f"{_track(c, 'DFSubscriptionChange')} AND {_property('subscriptionId')} = {group}"
            i = self.state(node, match, value="JSONExtractString(properties, 'action')")
            if kind == "SubscriptionGroupUnsubscribed":
                return f"(s{i}_v = 'Unsubscribe')"
            if node.get("subscriptionGroupType") == "OptIn":
                return f"(s{i}_v = 'Subscribe')"
            return f"(s{i}_v != 'Unsubscribe')"
        if kind == "Manual":
            segment = c.bind(self.segment_id, "String")
            version = c.bind(int(node.get("version", 0)), "Int64")
            match = (
                f"{_track(c, 'DFManualSegmentUpdate')} AND {_property('segmentId')} = {segment}"
                f" AND JSONExtractInt(properties, 'version') = {version}"
            )
            i = self.state(node, match, value="toString(JSONExtractInt(properties, 'inSegment'))")
            return f"(s{i}_v = '1')"
        if kind == "RandomBucket":
            percent = float(node["percent"])
            if percent >= 1:
                return "true"
            threshold = c.bind(int(percent * 2**64), "UInt64")
            c.reads_user_id = True
            name = c.bind(self.name, "String")
            return (
                f"(reinterpretAsUInt64(reverse(substring(MD5(concat(user_id, {name})), 1, 8))) < {threshold})"
            )
        if kind == "Everyone":
            return "true"
        # KeyedPerformed is evaluated inside event-entry journeys, never in ClickHouse.
        return "false"

    def has_been(self, node: dict[str, Any]) -> str:
        """The trait equals the operator's value and has since it last took that value: for at least
        (GTE) or less than (LT) `windowSeconds`.

        Two states: the latest time the trait held another value, and every time it was set to this
        value; the value was taken at the first of those after the latest other one."""
        c = self.compiled
        c.reads_clock = True
        operator = node["operator"]
        raw = _raw_at("properties", c.bind(clickhouse_path(node["path"]), "String"))
        target = c.bind(_value_text(operator["value"]), "String")
        millis = "toString(toUnixTimestamp64Milli(event_time))"
        other = self.state(
            node, f"{_IDENTIFY} AND {raw} != '' AND {_text(raw)} != {target}", part="other", value=millis
        )
        same = self.state(
            node, f"{_IDENTIFY} AND {raw} != '' AND {_text(raw)} = {target}", part="same", grouped=millis
        )
        last_other = f"coalesce(toInt64OrNull(s{other}_v), -1)"
        since = f"arrayMin(arrayFilter(t -> t > {last_other}, arrayMap(t -> toInt64(t), s{same}_g)))"
        held = f"(toUnixTimestamp64Milli({{now:DateTime64(3, 'UTC')}}) - {since})"
        window = c.bind(int(operator["windowSeconds"]) * 1000, "Int64")
        comparison = ">=" if operator.get("comparator") == "GTE" else "<"
        holds_now = f"arrayExists(t -> toInt64(t) > {last_other}, s{same}_g)"
        return f"({holds_now} AND {held} {comparison} {window})"

    def performed(self, node: dict[str, Any]) -> str:
        c = self.compiled
        match = f"{_track(c, node['event'])} AND {_property_filters(c, node.get('properties'))}"
        window = int(node.get("withinSeconds") or 0)
        i = self.state(
            node,
            match,
            counted=True,
            bucket_seconds=_window_bucket(window) if window else 0,
            window_seconds=window,
        )
        times = c.bind(int(node.get("times", 1)), "UInt64")
        operator = node.get("timesOperator") or "="
        if operator == ">=":
            return f"(s{i}_c >= {times})"
        if operator == "<":
            return f"(s{i}_c < {times})"
        return f"(s{i}_c = {times})"


# -- user properties ---------------------------------------------------------------------------


class _PropertyBuilder:
    def __init__(self, compiled: Compiled, property_id: str, version: str):
        self.compiled, self.property_id, self.version = compiled, property_id, version

    def state(self, node_id: str, match: str, **kwargs: Any) -> int:
        self.compiled.states.append(
            StateSpec(state_id(self.property_id, self.version, node_id), match, **kwargs)
        )
        return len(self.compiled.states) - 1

    def node(self, definition: dict[str, Any], node_id: str = "root") -> str:
        """The property's value as JSON text, '' when the user has none."""
        kind = definition["type"]
        c = self.compiled
        if kind == "Id":
            c.reads_user_id = True
            return "toJSONString(user_id)"
        if kind == "AnonymousId":
            i = self.state(node_id, "anonymous_id != ''", value="anonymous_id")
            return f"if(s{i}_v = '', '', toJSONString(s{i}_v))"
        if kind == "Trait":
            path = c.bind(clickhouse_path(definition["path"]), "String")
            return f"s{self.state(node_id, _IDENTIFY, value=_raw_at('properties', path))}_v"
        if kind == "Performed":
            path = c.bind(clickhouse_path(definition["path"]), "String")
            match = (
                f"{_track(c, definition['event'])} AND {_property_filters(c, definition.get('properties'))}"
            )
            return f"s{self.state(node_id, match, value=_raw_at('properties', path))}_v"
        if kind == "File":
            path = c.bind(f"$.DFAttachedFiles[{json.dumps(definition['name'])}]", "String")
            return f"s{self.state(node_id, _ANY_TRACK, value=_raw_at('properties', path))}_v"
        if kind == "PerformedMany":
            events = [c.bind(item["event"], "String") for item in definition.get("or", [])]
            match = f"{_ANY_TRACK} AND event IN ({', '.join(events) or _EMPTY})"
            entry = (
                "concat('{\"timestamp\":',"
                " toJSONString(formatDateTime(event_time, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC')),"
                " ',\"event\":', toJSONString(event),"
                " ',\"properties\":', if(properties = '', '{}', properties), '}')"
            )
            i = self.state(node_id, match, grouped=entry)
            joined = f"arrayStringConcat(arraySort(arrayDistinct(s{i}_g)), ',')"
            return f"if(length(s{i}_g) = 0, '', concat('[', {joined}, ']'))"
        if kind == "Group":
            nodes = {node["id"]: node for node in definition.get("nodes", [])}
            return self.group_node(nodes, definition["entry"], set())
        # KeyedPerformed values exist only inside event-entry journeys.
        return "''"

    def group_node(self, nodes: dict[str, Any], node_id: str, visiting: set[str]) -> str:
        node = nodes.get(node_id)
        if node is None or node_id in visiting:
            return "''"
        if node["type"] != "AnyOf":
            return self.node(node, node_id)
        children = [self.group_node(nodes, child, visiting | {node_id}) for child in node.get("children", [])]
        if not children:
            return "''"
        # The first child with a value wins.
        return "multiIf(" + ", ".join(f"{child} != '', {child}" for child in children) + ", '')"
