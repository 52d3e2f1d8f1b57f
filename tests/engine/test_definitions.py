"""Segment and user-property definitions: every node type is accepted with a valid example and kept
exactly as sent; every invalid case is refused naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.definitions import (
    check_storable,
    is_manual,
    validate_segment_definition,
    validate_user_property_definition,
)
from engine.errors import InvalidInput


def _trait(node_id: str, operator: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Trait", "id": node_id, "path": "plan", "operator": operator}


OPERATORS: list[dict[str, Any]] = [
    {"type": "Equals", "value": "paid"},
    {"type": "Equals", "value": 3},
    {"type": "NotEquals", "value": 2.5},
    {"type": "Exists"},
    {"type": "NotExists"},
    {"type": "GreaterThanOrEqual", "value": 10},
    {"type": "LessThan", "value": -1.5},
    {"type": "Within", "windowSeconds": 3600},
    {"type": "HasBeen", "comparator": "GTE", "value": "trial", "windowSeconds": 86400},
    {"type": "HasBeen", "comparator": "LT", "value": 1, "windowSeconds": 60},
    {"type": "AbsoluteTimestamp", "absoluteTimestamp": "2026-01-01T00:00:00.000Z", "direction": "after"},
    {"type": "AbsoluteTimestamp", "absoluteTimestamp": "2025-06-30T12:00:00+02:00", "direction": "before"},
]

NODES: list[dict[str, Any]] = [
    *(_trait("n", operator) for operator in OPERATORS),
    {"type": "Performed", "id": "n", "event": "LOGIN"},
    {
        "type": "Performed",
        "id": "n",
        "event": "ORDER*",
        "times": 2,
        "timesOperator": ">=",
        "withinSeconds": 604800,
        "properties": [
            {"path": "total", "operator": {"type": "GreaterThanOrEqual", "value": 10}},
            {"path": "$.currency", "operator": {"type": "Equals", "value": "EUR"}},
            {"path": "coupon", "operator": {"type": "NotExists"}},
        ],
    },
    {"type": "Performed", "id": "n", "event": "", "times": 0, "timesOperator": "="},
    {"type": "Performed", "id": "n", "event": "*", "times": 3, "timesOperator": "<"},
    {
        "type": "LastPerformed",
        "id": "n",
        "event": "STATUS",
        "whereProperties": [{"path": "kind", "operator": {"type": "Equals", "value": "plan"}}],
        "hasProperties": [{"path": "value", "operator": {"type": "NotEquals", "value": "free"}}],
    },
    {"type": "Email", "id": "n", "event": "DFEmailOpened", "templateId": "t-1"},
    {"type": "Email", "id": "n", "event": "DFInternalMessageSent", "templateId": "t-1", "times": 1},
    {"type": "Broadcast", "id": "n"},
    {"type": "SubscriptionGroup", "id": "n", "subscriptionGroupId": "g", "subscriptionGroupType": "OptIn"},
    {"type": "SubscriptionGroup", "id": "n", "subscriptionGroupId": "g", "subscriptionGroupType": "OptOut"},
    {"type": "SubscriptionGroupUnsubscribed", "id": "n", "subscriptionGroupId": "g"},
    {"type": "RandomBucket", "id": "n", "percent": 0},
    {"type": "RandomBucket", "id": "n", "percent": 0.25},
    {"type": "RandomBucket", "id": "n", "percent": 1},
    {"type": "Includes", "id": "n", "path": "tags", "item": "beta"},
]
ENTRY_ONLY_NODES: list[dict[str, Any]] = [
    {"type": "Manual", "id": "n", "version": 1767225600},
    {"type": "Everyone", "id": "n"},
    {
        "type": "KeyedPerformed",
        "id": "n",
        "event": "CART",
        "key": "cartId",
        "times": 1,
        "timesOperator": ">=",
        "properties": [
            {"path": "total", "operator": {"type": "LessThan", "value": 100}},
            {"path": "coupon", "operator": {"type": "NotEquals", "value": "X"}},
        ],
    },
]


def _entry(node: dict[str, Any]) -> dict[str, Any]:
    return {"entryNode": node, "nodes": []}


def _in_body(node: dict[str, Any]) -> dict[str, Any]:
    return {"entryNode": {"type": "Or", "id": "root", "children": ["n"]}, "nodes": [node]}


@pytest.mark.parametrize("node", NODES + ENTRY_ONLY_NODES, ids=lambda n: n["type"])
def test_every_node_type_is_accepted_as_the_entry_node(node: dict[str, Any]) -> None:
    definition = _entry(node)
    sent = copy.deepcopy(definition)
    assert validate_segment_definition(definition) is definition
    assert definition == sent


@pytest.mark.parametrize("node", NODES, ids=lambda n: n["type"])
def test_body_nodes_are_accepted_under_and_or(node: dict[str, Any]) -> None:
    validate_segment_definition(_in_body(node))
    validate_segment_definition(
        {"entryNode": {"type": "And", "id": "root", "children": ["n"]}, "nodes": [node]}
    )


def test_the_contracts_example_and_nested_booleans_are_accepted() -> None:
    validate_segment_definition(
        {
            "entryNode": {"type": "And", "id": "root", "children": ["a", "b", "c"]},
            "nodes": [
                _trait("a", {"type": "Equals", "value": "paid"}),
                {
                    "type": "Performed",
                    "id": "b",
                    "event": "LOGIN",
                    "timesOperator": ">=",
                    "withinSeconds": 60,
                },
                {"type": "Or", "id": "c", "children": ["d", "a"]},
                {"type": "And", "id": "d", "children": []},
            ],
        }
    )


def test_unknown_fields_are_kept() -> None:
    definition = _entry({**_trait("1", {"type": "Exists", "note": "x"}), "label": {"ui": [1, 2]}})
    definition["editor"] = {"zoom": 1}
    assert validate_segment_definition(definition)["editor"] == {"zoom": 1}


SEGMENT_REFUSALS: list[Any] = [
    pytest.param("x", "body/definition", id="not an object"),
    pytest.param({"entryNode": {"type": "Everyone", "id": "1"}}, "body/definition/nodes", id="no nodes"),
    pytest.param({"nodes": []}, "body/definition/entryNode", id="no entry"),
    pytest.param(
        _entry({"type": "Template", "id": "1"}), "body/definition/entryNode/type", id="unknown node type"
    ),
    pytest.param(_entry({"id": "1"}), "body/definition/entryNode/type", id="node without type"),
    pytest.param(_entry({"type": "Everyone"}), "body/definition/entryNode/id", id="node without id"),
    pytest.param(_entry({"type": "Everyone", "id": 1}), "body/definition/entryNode/id", id="numeric id"),
    pytest.param(
        _entry({"type": "Trait", "id": "1", "operator": {"type": "Exists"}}),
        "body/definition/entryNode/path",
        id="trait without path",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "Contains"})),
        "body/definition/entryNode/operator/type",
        id="unknown operator",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "Equals"})),
        "body/definition/entryNode/operator/value",
        id="equals without value",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "Equals", "value": [1]})),
        "body/definition/entryNode/operator/value",
        id="equals an array",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "LessThan", "value": "3"})),
        "body/definition/entryNode/operator/value",
        id="numeric string for a number",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "Within", "windowSeconds": True})),
        "body/definition/entryNode/operator/windowSeconds",
        id="boolean for a number",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "HasBeen", "comparator": "GT", "value": 1, "windowSeconds": 1})),
        "body/definition/entryNode/operator/comparator",
        id="unknown comparator",
    ),
    pytest.param(
        _entry(_trait("1", {"type": "AbsoluteTimestamp", "absoluteTimestamp": "soon", "direction": "after"})),
        "body/definition/entryNode/operator/absoluteTimestamp",
        id="bad timestamp",
    ),
    pytest.param(
        _entry(
            _trait(
                "1", {"type": "AbsoluteTimestamp", "absoluteTimestamp": "2026-01-01", "direction": "later"}
            )
        ),
        "body/definition/entryNode/operator/direction",
        id="bad direction",
    ),
    pytest.param(
        _entry({"type": "Performed", "id": "1", "event": "E", "times": None}),
        "body/definition/entryNode/times",
        id="null times",
    ),
    pytest.param(
        _entry({"type": "Performed", "id": "1", "event": "E", "timesOperator": ">"}),
        "body/definition/entryNode/timesOperator",
        id="unknown times operator",
    ),
    pytest.param(
        _entry({"type": "Email", "id": "1", "event": "DFSmsDelivered", "templateId": "t"}),
        "body/definition/entryNode/event",
        id="unknown email event",
    ),
    pytest.param(
        _entry(
            {
                "type": "SubscriptionGroup",
                "id": "1",
                "subscriptionGroupId": "g",
                "subscriptionGroupType": "Both",
            }
        ),
        "body/definition/entryNode/subscriptionGroupType",
        id="unknown group type",
    ),
    pytest.param(
        _entry({"type": "Manual", "id": "1"}),
        "body/definition/entryNode/version",
        id="manual without version",
    ),
    pytest.param(
        _entry({"type": "RandomBucket", "id": "1", "percent": 1.01}),
        "body/definition/entryNode/percent",
        id="percent above 1",
    ),
    pytest.param(
        _entry({"type": "RandomBucket", "id": "1", "percent": -0.1}),
        "body/definition/entryNode/percent",
        id="percent below 0",
    ),
    pytest.param(
        _entry({"type": "Includes", "id": "1", "path": "tags", "item": 3}),
        "body/definition/entryNode/item",
        id="includes a number",
    ),
    pytest.param(
        _entry({"type": "And", "id": "1", "children": "a"}),
        "body/definition/entryNode/children",
        id="children not a list",
    ),
    pytest.param(
        _entry(
            {
                "type": "Performed",
                "id": "1",
                "event": "E",
                "properties": [{"path": "at", "operator": {"type": "Within", "windowSeconds": 5}}],
            }
        ),
        "body/definition/entryNode/properties/0/operator/type",
        id="within on an event",
    ),
    pytest.param(
        _entry(
            {
                "type": "LastPerformed",
                "id": "1",
                "event": "E",
                "hasProperties": [
                    {"path": "p", "operator": {"type": "Exists"}},
                    {
                        "path": "q",
                        "operator": {"type": "HasBeen", "comparator": "LT", "value": 1, "windowSeconds": 5},
                    },
                ],
            }
        ),
        "body/definition/entryNode/hasProperties/1/operator/type",
        id="has-been on an event",
    ),
    pytest.param(
        _in_body(
            {
                "type": "LastPerformed",
                "id": "n",
                "event": "E",
                "whereProperties": [
                    {
                        "path": "at",
                        "operator": {
                            "type": "AbsoluteTimestamp",
                            "absoluteTimestamp": "2026-01-01",
                            "direction": "after",
                        },
                    }
                ],
            }
        ),
        "body/definition/nodes/0/whereProperties/0/operator/type",
        id="absolute timestamp on an event",
    ),
    pytest.param(
        _entry(
            {
                "type": "KeyedPerformed",
                "id": "1",
                "event": "E",
                "key": "k",
                "properties": [{"path": "p", "operator": {"type": "NotExists"}}],
            }
        ),
        "body/definition/entryNode/properties/0/operator/type",
        id="not-exists on a keyed event",
    ),
    pytest.param(
        _in_body({"type": "Manual", "id": "n", "version": 1}),
        "body/definition/nodes/0/type",
        id="manual in the body",
    ),
    pytest.param(
        _in_body({"type": "Everyone", "id": "n"}), "body/definition/nodes/0/type", id="everyone in the body"
    ),
    pytest.param(
        _in_body({"type": "KeyedPerformed", "id": "n", "event": "E", "key": "k"}),
        "body/definition/nodes/0/type",
        id="keyed in the body",
    ),
    pytest.param(
        {
            "entryNode": {"type": "Or", "id": "a", "children": ["a2"]},
            "nodes": [{"type": "Broadcast", "id": "a2"}, {"type": "Broadcast", "id": "a2"}],
        },
        "body/definition/nodes/1/id",
        id="duplicate id",
    ),
    pytest.param(
        {"entryNode": {"type": "Or", "id": "a", "children": []}, "nodes": [{"type": "Broadcast", "id": "a"}]},
        "body/definition/nodes/0/id",
        id="body node reusing the entry id",
    ),
    pytest.param(
        {
            "entryNode": {"type": "And", "id": "root", "children": ["a", "ghost"]},
            "nodes": [{"type": "Broadcast", "id": "a"}],
        },
        "body/definition/entryNode/children/1",
        id="unknown child",
    ),
    pytest.param(
        {
            "entryNode": {"type": "And", "id": "root", "children": ["a"]},
            "nodes": [{"type": "Or", "id": "a", "children": ["ghost"]}],
        },
        "body/definition/nodes/0/children/0",
        id="unknown child in the body",
    ),
    pytest.param(
        _entry({"type": "And", "id": "root", "children": ["root"]}),
        "body/definition/entryNode/children/0",
        id="self reference",
    ),
    pytest.param(
        {
            "entryNode": {"type": "And", "id": "root", "children": ["a"]},
            "nodes": [{"type": "Or", "id": "a", "children": ["root"]}],
        },
        "body/definition/nodes/0/children/0",
        id="two-node cycle",
    ),
    pytest.param(
        {
            "entryNode": {"type": "And", "id": "root", "children": ["a"]},
            "nodes": [
                {"type": "Or", "id": "a", "children": ["b"]},
                {"type": "And", "id": "b", "children": ["c"]},
                {"type": "Or", "id": "c", "children": ["a"]},
            ],
        },
        "body/definition/nodes/2/children/0",
        id="cycle below the entry",
    ),
    pytest.param(
        _entry({"type": "Everyone", "id": "1", "x": float("nan")}), "body/definition", id="NaN anywhere"
    ),
    pytest.param(
        _entry(_trait("1", {"type": "Equals", "value": "a\x00b"})), "body/definition", id="NUL in a string"
    ),
    pytest.param(_entry({"type": "Everyone", "id": "\ud800"}), "body/definition", id="lone surrogate"),
]


@pytest.mark.parametrize(("definition", "field"), SEGMENT_REFUSALS)
def test_invalid_segment_definitions_name_the_field(definition: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_segment_definition(definition)
    assert refused.value.field == field
    assert refused.value.message.startswith(field + " ")


def test_a_shared_child_is_not_a_cycle() -> None:
    validate_segment_definition(
        {
            "entryNode": {"type": "Or", "id": "root", "children": ["a", "b"]},
            "nodes": [
                {"type": "And", "id": "a", "children": ["c"]},
                {"type": "And", "id": "b", "children": ["c"]},
                {"type": "Broadcast", "id": "c"},
            ],
        }
    )


def test_the_field_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_segment_definition(_entry({"type": "Everyone"}), where="definition")
    assert refused.value.field == "definition/entryNode/id"


USER_PROPERTIES: list[dict[str, Any]] = [
    {"type": "Id"},
    {"type": "AnonymousId"},
    {"type": "Trait", "path": "email"},
    {"type": "Trait", "path": "$['first name']", "id": "t1"},
    {"type": "Performed", "event": "ORDER", "path": "total"},
    {
        "type": "Performed",
        "event": "ORDER*",
        "path": "items[0].sku",
        "properties": [{"path": "currency", "operator": {"type": "Equals", "value": "EUR"}}],
        "skipReCompute": True,
        "id": "p1",
    },
    {"type": "PerformedMany", "or": [{"event": "VIEW"}, {"event": "BUY"}]},
    {"type": "KeyedPerformed", "event": "CART", "path": "total", "key": "cartId"},
    {"type": "File", "name": "invoice.pdf"},
    {"type": "File", "name": "receipt", "skipReCompute": False, "id": "f"},
    {
        "type": "Group",
        "entry": "any",
        "nodes": [
            {"type": "AnyOf", "id": "any", "children": ["t", "p", "inner"]},
            {"type": "Trait", "id": "t", "path": "email"},
            {"type": "Performed", "id": "p", "event": "SIGNUP", "path": "email"},
            {"type": "AnyOf", "id": "inner", "children": ["f", "k"]},
            {"type": "File", "id": "f", "name": "avatar"},
            {"type": "KeyedPerformed", "id": "k", "event": "E", "path": "p", "key": "k"},
        ],
    },
]


@pytest.mark.parametrize("definition", USER_PROPERTIES, ids=lambda d: d["type"])
def test_every_user_property_type_is_accepted_as_sent(definition: dict[str, Any]) -> None:
    sent = copy.deepcopy(definition)
    assert validate_user_property_definition(definition) is definition
    assert definition == sent


USER_PROPERTY_REFUSALS: list[Any] = [
    pytest.param([], "body/definition", id="not an object"),
    pytest.param({"path": "x"}, "body/definition/type", id="no type"),
    pytest.param({"type": "Template"}, "body/definition/type", id="unknown type"),
    pytest.param(
        {"type": "AnyOf", "id": "a", "children": []}, "body/definition/type", id="AnyOf outside a group"
    ),
    pytest.param({"type": "Trait"}, "body/definition/path", id="trait without path"),
    pytest.param({"type": "Performed", "path": "p"}, "body/definition/event", id="performed without event"),
    pytest.param(
        {
            "type": "Performed",
            "event": "E",
            "path": "p",
            "properties": [{"path": "q", "operator": {"type": "Exists"}}],
        },
        "body/definition/properties/0/operator/type",
        id="non-equals filter",
    ),
    pytest.param(
        {
            "type": "Performed",
            "event": "E",
            "path": "p",
            "properties": [{"path": "q", "operator": {"type": "Equals", "value": 1}}],
        },
        "body/definition/properties/0/operator/value",
        id="numeric filter value",
    ),
    pytest.param(
        {"type": "PerformedMany", "or": [{"event": 1}]},
        "body/definition/or/0/event",
        id="performed-many event not a string",
    ),
    pytest.param(
        {"type": "KeyedPerformed", "event": "E", "path": "p"}, "body/definition/key", id="keyed without key"
    ),
    pytest.param({"type": "File"}, "body/definition/name", id="file without name"),
    pytest.param(
        {"type": "File", "name": "f", "skipReCompute": "yes"},
        "body/definition/skipReCompute",
        id="skipReCompute not a boolean",
    ),
    pytest.param(
        {"type": "Group", "entry": "x", "nodes": [{"type": "AnyOf", "id": "a", "children": []}]},
        "body/definition/entry",
        id="group entry unknown",
    ),
    pytest.param(
        {"type": "Group", "entry": "a", "nodes": [{"type": "AnyOf", "id": "a", "children": ["ghost"]}]},
        "body/definition/nodes/0/children/0",
        id="group child unknown",
    ),
    pytest.param(
        {
            "type": "Group",
            "entry": "a",
            "nodes": [
                {"type": "AnyOf", "id": "a", "children": []},
                {"type": "Trait", "id": "a", "path": "p"},
            ],
        },
        "body/definition/nodes/1/id",
        id="group duplicate id",
    ),
    pytest.param(
        {
            "type": "Group",
            "entry": "a",
            "nodes": [
                {"type": "AnyOf", "id": "a", "children": ["b"]},
                {"type": "AnyOf", "id": "b", "children": ["a"]},
            ],
        },
        "body/definition/nodes/1/children/0",
        id="group cycle",
    ),
    pytest.param(
        {"type": "Group", "entry": "a", "nodes": [{"type": "Id"}]},
        "body/definition/nodes/0/type",
        id="group of ids",
    ),
    pytest.param(
        {"type": "Group", "entry": "a", "nodes": [{"type": "Group", "entry": "b", "nodes": []}]},
        "body/definition/nodes/0/type",
        id="nested group",
    ),
    pytest.param(
        {"type": "Group", "entry": "a", "nodes": [{"type": "AnyOf", "children": []}]},
        "body/definition/nodes/0/id",
        id="AnyOf without id",
    ),
    pytest.param({"type": "Trait", "path": "p", "x": float("inf")}, "body/definition", id="infinite number"),
]


@pytest.mark.parametrize(("definition", "field"), USER_PROPERTY_REFUSALS)
def test_invalid_user_property_definitions_name_the_field(definition: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_user_property_definition(definition)
    assert refused.value.field == field
    assert refused.value.message.startswith(field + " ")


def test_is_manual_reads_stored_definitions_of_any_shape() -> None:
    assert is_manual({"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []})
    assert not is_manual({"entryNode": {"type": "Everyone", "id": "1"}, "nodes": []})
    assert not is_manual({})
    assert not is_manual(None)


def test_check_storable_accepts_ordinary_json() -> None:
    check_storable({"a": [1, 2.5, "ü", None, True, {"b": "c"}]}, "body/x")
