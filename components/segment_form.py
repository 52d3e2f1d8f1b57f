"""The segment editor's form state, and its conversion to and from a segment definition (§7.1).

The editor shows a definition as a tree: the entry node on top, And/Or nodes holding their children.
Each node is a fieldset whose inputs are named `node.<key>.<field>`; a node's filter rows are
`node.<key>.<list>.<index>.<field>` and an operator's fields `<owner>.operator.<field>`. Every value
lives in an input, so each htmx request (add a child, change a type, remove) posts the whole state,
which is parsed here into a `NodeForm` tree, changed, and rendered again.

Conversion is exact: a definition the form cannot show as it is (fields the form has no input for,
a node shared by two parents, nodes no And/Or reaches) is `Unrepresentable`, and the editor then
offers the JSON view only, so saving from the form never drops part of a definition. Validation is
engine.definitions' business; this module only refuses form states no editor renders.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidInput

# The node types of engine.definition_models, with the editor's label for each, in menu order.
NODE_TYPES: dict[str, str] = {
    "Trait": "User trait",
    "Performed": "Performed an event",
    "LastPerformed": "Last performed event",
    "KeyedPerformed": "Performed, keyed (event-entry journeys)",
    "Email": "Email event",
    "Broadcast": "Received a broadcast (V1)",
    "SubscriptionGroup": "In subscription group",
    "SubscriptionGroupUnsubscribed": "Unsubscribed from group",
    "Manual": "Manual (uploaded users)",
    "RandomBucket": "Random bucket",
    "Everyone": "Everyone",
    "Includes": "Trait list includes",
    "And": "All of (And)",
    "Or": "Any of (Or)",
}
# Valid only as the entry node (engine.definition_models.ENTRY_ONLY_NODES).
ENTRY_ONLY = frozenset({"Manual", "Everyone", "KeyedPerformed"})
GROUP_TYPES = frozenset({"And", "Or"})

OPERATORS: dict[str, str] = {
    "Equals": "equals",
    "NotEquals": "does not equal",
    "Exists": "exists",
    "NotExists": "does not exist",
    "GreaterThanOrEqual": "is at least",
    "LessThan": "is less than",
    "Within": "is a time within the last",
    "HasBeen": "has been … for",
    "AbsoluteTimestamp": "is a time before/after",
}
TRAIT_OPERATORS = tuple(OPERATORS)
# Event property filters: no operator that compares with the clock (§7.0).
EVENT_OPERATORS = ("Equals", "NotEquals", "Exists", "NotExists", "GreaterThanOrEqual", "LessThan")
KEYED_OPERATORS = ("Equals", "NotEquals", "Exists", "GreaterThanOrEqual", "LessThan")
TIMES_OPERATORS = ("=", ">=", "<")
EMAIL_EVENTS = (
    "DFInternalMessageSent",
    "DFEmailDropped",
    "DFEmailDelivered",
    "DFEmailOpened",
    "DFEmailClicked",
    "DFEmailBounced",
    "DFEmailMarkedSpam",
)
# Window units, largest first: a stored number of seconds is shown in the largest that divides it.
WINDOW_UNITS: dict[str, int] = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}

# The filter lists each node type has, and the operators their rows offer.
FILTER_LISTS: dict[str, dict[str, tuple[str, ...]]] = {
    "Performed": {"properties": EVENT_OPERATORS},
    "LastPerformed": {"whereProperties": EVENT_OPERATORS, "hasProperties": EVENT_OPERATORS},
    "KeyedPerformed": {"properties": KEYED_OPERATORS},
}
_ALL_FILTER_LISTS = frozenset(name for lists in FILTER_LISTS.values() for name in lists)
# Scalar node inputs; `withinAmount`/`withinUnit` stand for Performed's `withinSeconds`.
_NODE_FIELDS = frozenset(
    {
        "path",
        "event",
        "times",
        "timesOperator",
        "withinAmount",
        "withinUnit",
        "key",
        "templateId",
        "subscriptionGroupId",
        "subscriptionGroupType",
        "version",
        "percent",
        "item",
    }
)
_OPERATOR_FIELDS = frozenset(
    {
        "type",
        "value",
        "valueType",
        "windowAmount",
        "windowUnit",
        "comparator",
        "absoluteTimestamp",
        "direction",
    }
)
# What a node starts with when it is added or its type changes.
DEFAULTS: dict[str, dict[str, str]] = {
    "Performed": {"times": "1", "timesOperator": ">="},
    "KeyedPerformed": {"times": "1", "timesOperator": ">="},
    "Email": {"event": "DFEmailOpened"},
    "SubscriptionGroup": {"subscriptionGroupType": "OptIn"},
    "Manual": {"version": "0"},
    "RandomBucket": {"percent": "0.5"},
}
# Deep enough for any hand-built segment, shallow enough for recursive rendering.
MAX_DEPTH = 24
ROOT = "body/definition"
_FIELD_NAME = re.compile(r"^node\.([0-9]{1,6})\.(.+)$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
INDEX = re.compile(r"^[0-9]{1,6}$")


class Unrepresentable(Exception):
    """The definition has something the form cannot show; it is edited as JSON instead."""


@dataclass
class OperatorForm:
    """A segment operator's inputs; `prefix` names them (`<owner>.operator`)."""

    values: dict[str, str] = field(default_factory=lambda: {"type": "Equals", "valueType": "string"})
    prefix: str = ""

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


@dataclass
class FilterForm:
    """One `{path, operator}` row of an event node's property filters."""

    path: str = ""
    operator: OperatorForm = field(default_factory=OperatorForm)
    prefix: str = ""


@dataclass
class NodeForm:
    """One node's fieldset. `key` is the form's handle for it; `id` the definition's node id."""

    key: str
    type: str
    id: str
    values: dict[str, str] = field(default_factory=dict)
    operator: OperatorForm = field(default_factory=OperatorForm)
    filters: dict[str, list[FilterForm]] = field(default_factory=dict)
    children: list[NodeForm] = field(default_factory=list)
    prefix: str = ""
    # The engine's message about this node, shown inside its fieldset.
    error: str | None = None

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def rows(self, list_name: str) -> list[FilterForm]:
        return self.filters.get(list_name, [])


# -- form fields -> tree -----------------------------------------------------------------------------


def tree_from_fields(fields: Iterable[tuple[str, Any]]) -> NodeForm:
    """The tree a posted form describes. Children keep the order their inputs came in.

    :raises InvalidInput: no entry node, an unknown node type, or nesting deeper than MAX_DEPTH.
    """
    nodes: dict[str, NodeForm] = {}
    parents: dict[str, str] = {}
    previous: dict[str, str] = {}
    # Filter rows by (node key, list, posted index).
    rows: dict[tuple[str, str, str], FilterForm] = {}
    for name, value in fields:
        matched = _FIELD_NAME.match(name)
        if matched is None or not isinstance(value, str):
            continue
        key, rest = matched.groups()
        node = nodes.setdefault(key, NodeForm(key=key, type="", id=""))
        if rest == "type":
            node.type = value
        elif rest == "id":
            node.id = value
        elif rest == "parent":
            parents[key] = value
        elif rest == "was":
            previous[key] = value
        else:
            _read_field(node, rest, value, rows)
    root: NodeForm | None = None
    for key, node in nodes.items():
        if node.type not in NODE_TYPES:
            raise InvalidInput(f"definition has a node of unknown type {node.type!r}", field=ROOT)
        if not node.id:
            node.id = new_node_id()
        if key in previous and previous[key] != node.type:
            apply_defaults(node)
        parent = parents.get(key, "")
        if not parent:
            if root is None:
                root = node
        elif parent in nodes and parent != key:
            nodes[parent].children.append(node)
    if root is None:
        raise InvalidInput("definition has no entry node", field=ROOT)
    for _, depth in walk(root):
        if depth > MAX_DEPTH:
            raise InvalidInput(f"definition is nested deeper than {MAX_DEPTH} levels", field=ROOT)
    return root


def _read_field(node: NodeForm, rest: str, value: str, rows: dict[tuple[str, str, str], FilterForm]) -> None:
    if rest in _NODE_FIELDS:
        node.values[rest] = value
        return
    head, _, tail = rest.partition(".")
    if head == "operator" and tail in _OPERATOR_FIELDS:
        node.operator.values[tail] = value
        return
    index, _, row_field = tail.partition(".")
    if head not in _ALL_FILTER_LISTS or not INDEX.match(index):
        return
    row = rows.get((node.key, head, index))
    if row is None:
        row = rows[(node.key, head, index)] = FilterForm(operator=OperatorForm(values={}))
        node.filters.setdefault(head, []).append(row)
    if row_field == "path":
        row.path = value
    elif row_field.startswith("operator.") and row_field.removeprefix("operator.") in _OPERATOR_FIELDS:
        row.operator.values[row_field.removeprefix("operator.")] = value


def apply_defaults(node: NodeForm) -> None:
    for name, value in DEFAULTS.get(node.type, {}).items():
        node.values.setdefault(name, value)
    node.operator.values.setdefault("type", "Equals")
    node.operator.values.setdefault("valueType", "string")


# -- tree -> definition ------------------------------------------------------------------------------


def definition_from_tree(root: NodeForm) -> dict[str, Any]:
    """The definition the tree shows: the root as entry node, the others in `nodes`, in tree order.

    Blank optional inputs leave their field out; a number input that is not a number is passed on as
    text for engine.definitions to refuse, naming the field.
    :raises InvalidInput: a value typed as a number that is not one, or an unknown window unit.
    """
    order = [node for node, _ in walk(root)]
    return {
        "entryNode": _node_json(root, f"{ROOT}/entryNode"),
        "nodes": [_node_json(node, f"{ROOT}/nodes/{index}") for index, node in enumerate(order[1:])],
    }


def walk(root: NodeForm) -> Iterator[tuple[NodeForm, int]]:
    """Every node with its depth (the root's is 0), parents before children, in order."""
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        children = node.children if node.type in GROUP_TYPES else []
        stack.extend((child, depth + 1) for child in reversed(children))


def node_at(root: NodeForm, field_path: str | None) -> NodeForm | None:
    """The node an engine error's field (`body/definition/nodes/3/...`) is about, if any."""
    if not field_path:
        return None
    parts = field_path.removeprefix(ROOT + "/").split("/")
    if parts[0] == "entryNode":
        return root
    if parts[0] == "nodes" and len(parts) > 1 and INDEX.match(parts[1]):
        order = [node for node, _ in walk(root)][1:]
        index = int(parts[1])
        return order[index] if index < len(order) else None
    return None


def _node_json(node: NodeForm, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": node.type, "id": node.id}
    kind = node.type
    if kind in ("Trait", "Includes"):
        out["path"] = node.get("path")
    if kind == "Trait":
        out["operator"] = _operator_json(node.operator, f"{where}/operator")
    if kind == "Includes":
        out["item"] = node.get("item")
    if kind in ("Performed", "LastPerformed", "KeyedPerformed", "Email"):
        out["event"] = node.get("event")
    if kind == "KeyedPerformed":
        out["key"] = node.get("key")
    if kind == "Email":
        out["templateId"] = node.get("templateId")
    if kind in ("Performed", "KeyedPerformed", "Email"):
        _set_number(out, "times", node.get("times"))
    if kind in ("Performed", "KeyedPerformed"):
        _set_text(out, "timesOperator", node.get("timesOperator"))
    if kind == "Performed":
        _set_window(out, "withinSeconds", node.get("withinAmount"), node.get("withinUnit"), where)
    for list_name in FILTER_LISTS.get(kind, {}):
        rows = [
            {
                "path": row.path,
                "operator": _operator_json(row.operator, f"{where}/{list_name}/{index}/operator"),
            }
            for index, row in enumerate(node.rows(list_name))
        ]
        # Upstream requires `hasProperties`; the other lists are optional and left out when empty.
        if rows or list_name == "hasProperties":
            out[list_name] = rows
    if kind in ("SubscriptionGroup", "SubscriptionGroupUnsubscribed"):
        out["subscriptionGroupId"] = node.get("subscriptionGroupId")
    if kind == "SubscriptionGroup":
        out["subscriptionGroupType"] = node.get("subscriptionGroupType")
    if kind == "Manual":
        _set_number(out, "version", node.get("version"))
    if kind == "RandomBucket":
        _set_number(out, "percent", node.get("percent"))
    if kind in GROUP_TYPES:
        out["children"] = [child.id for child in node.children]
    return out


def _operator_json(operator: OperatorForm, where: str) -> dict[str, Any]:
    kind = operator.get("type")
    out: dict[str, Any] = {"type": kind}
    if kind in ("Equals", "NotEquals", "HasBeen"):
        out["value"] = _typed_value(operator, f"{where}/value")
    if kind in ("GreaterThanOrEqual", "LessThan"):
        _set_number(out, "value", operator.get("value"))
    if kind == "HasBeen":
        _set_text(out, "comparator", operator.get("comparator"))
    if kind in ("Within", "HasBeen"):
        _set_window(out, "windowSeconds", operator.get("windowAmount"), operator.get("windowUnit"), where)
    if kind == "AbsoluteTimestamp":
        out["absoluteTimestamp"] = operator.get("absoluteTimestamp")
        _set_text(out, "direction", operator.get("direction"))
    return out


def _typed_value(operator: OperatorForm, where: str) -> str | int | float:
    text = operator.get("value")
    if operator.get("valueType", "string") != "number":
        return text
    number = parse_number(text)
    if number is None:
        raise InvalidInput(f"{where} must be a number", field=where)
    return number


def _set_text(out: dict[str, Any], name: str, text: str) -> None:
    if text:
        out[name] = text


def _set_number(out: dict[str, Any], name: str, text: str) -> None:
    if text.strip():
        number = parse_number(text)
        out[name] = text if number is None else number


def _set_window(out: dict[str, Any], name: str, amount: str, unit: str, where: str) -> None:
    if not amount.strip():
        return
    multiplier = WINDOW_UNITS.get(unit or "seconds")
    if multiplier is None:
        raise InvalidInput(f"{where}/{name} has an unknown unit {unit!r}", field=f"{where}/{name}")
    number = parse_number(amount)
    if number is None:
        out[name] = amount
        return
    seconds = number * multiplier
    out[name] = int(seconds) if isinstance(seconds, float) and seconds.is_integer() else seconds


def parse_number(text: str) -> int | float | None:
    """`text` as a JSON number (an int when it has no fraction), or None."""
    text = text.strip()
    if _INTEGER.match(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


# -- definition -> tree ------------------------------------------------------------------------------


def tree_from_definition(definition: Any) -> NodeForm:
    """The tree that shows `definition` exactly.

    :raises Unrepresentable: converting the tree back would not give the same definition.
    """
    if not isinstance(definition, dict) or not isinstance(definition.get("entryNode"), dict):
        raise Unrepresentable("no entry node")
    body = definition.get("nodes", [])
    if not isinstance(body, list) or set(definition) != {"entryNode", "nodes"}:
        raise Unrepresentable("unexpected top-level fields")
    by_id: dict[str, dict[str, Any]] = {}
    for raw in body:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or raw["id"] in by_id:
            raise Unrepresentable("a node without a unique id")
        by_id[raw["id"]] = raw
    used: set[str] = set()
    keys = iter(range(1_000_000))
    root = _node_form(definition["entryNode"], str(next(keys)))
    pending = [(root, definition["entryNode"], 0)]
    while pending:
        node, raw, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise Unrepresentable("nested too deep")
        if node.type not in GROUP_TYPES:
            continue
        children = raw.get("children")
        if not isinstance(children, list):
            raise Unrepresentable("children is not a list")
        for child_id in children:
            if not isinstance(child_id, str) or child_id not in by_id or child_id in used:
                raise Unrepresentable("a child that is missing or shared")
            used.add(child_id)
            child = _node_form(by_id[child_id], str(next(keys)))
            node.children.append(child)
            pending.append((child, by_id[child_id], depth + 1))
    if used != set(by_id):
        raise Unrepresentable("nodes no And/Or reaches")
    try:
        back = definition_from_tree(root)
    except InvalidInput:
        raise Unrepresentable("values the form cannot hold") from None
    if not same_definition(back, definition):
        raise Unrepresentable("fields the form has no input for")
    return root


def _node_form(raw: dict[str, Any], key: str) -> NodeForm:
    kind, node_id = raw.get("type"), raw.get("id")
    if kind not in NODE_TYPES or not isinstance(node_id, str):
        raise Unrepresentable("unknown node type")
    node = NodeForm(key=key, type=kind, id=node_id)
    for name in _NODE_FIELDS & raw.keys():
        node.values[name] = _text(raw[name])
    if "withinSeconds" in raw:
        node.values["withinAmount"], node.values["withinUnit"] = _window_parts(raw["withinSeconds"])
    if "operator" in raw:
        node.operator = _operator_form(raw["operator"])
    for list_name in _ALL_FILTER_LISTS & raw.keys():
        rows = raw[list_name]
        if not isinstance(rows, list):
            raise Unrepresentable("filters are not a list")
        node.filters[list_name] = [_filter_form(row) for row in rows]
    return node


def _filter_form(raw: Any) -> FilterForm:
    if not isinstance(raw, dict):
        raise Unrepresentable("a filter is not an object")
    return FilterForm(path=_text(raw.get("path", "")), operator=_operator_form(raw.get("operator")))


def _operator_form(raw: Any) -> OperatorForm:
    if not isinstance(raw, dict):
        raise Unrepresentable("an operator is not an object")
    values = {"type": _text(raw.get("type", "")), "valueType": "string"}
    for name in ("comparator", "absoluteTimestamp", "direction"):
        if name in raw:
            values[name] = _text(raw[name])
    if "value" in raw:
        value = raw["value"]
        values["value"] = _text(value)
        values["valueType"] = "string" if isinstance(value, str) else "number"
    if "windowSeconds" in raw:
        values["windowAmount"], values["windowUnit"] = _window_parts(raw["windowSeconds"])
    return OperatorForm(values=values)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        # Anything else comes back as text, which the round-trip check then tells apart.
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _window_parts(seconds: Any) -> tuple[str, str]:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and float(seconds).is_integer():
        whole = int(seconds)
        for unit, multiplier in WINDOW_UNITS.items():
            if whole != 0 and whole % multiplier == 0:
                return str(whole // multiplier), unit
    return _text(seconds), "seconds"


# -- comparing definitions ---------------------------------------------------------------------------


def same_definition(first: Any, second: Any) -> bool:
    """Whether two definitions mean the same: equal but for the order of `nodes` and empty optional
    filter lists. Saving one in place of the other would only reorder what is stored."""
    return bool(_canonical(first) == _canonical(second))


def _canonical(definition: Any) -> Any:
    if not isinstance(definition, dict) or not isinstance(definition.get("nodes"), list):
        return definition
    nodes = definition["nodes"]
    ids = [node.get("id") if isinstance(node, dict) else None for node in nodes]
    if None in ids or len(set(ids)) != len(ids):
        return definition
    return {
        **definition,
        "entryNode": _without_empty_lists(definition.get("entryNode")),
        "nodes": {node["id"]: _without_empty_lists(node) for node in nodes},
    }


def _without_empty_lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    return {name: value for name, value in node.items() if not (name in _ALL_FILTER_LISTS and value == [])}


def new_node_id() -> str:
    return str(uuid.uuid4())
