"""Edits of a segment form tree: new nodes and definitions, the builder's actions (add, change,
remove a condition or a property filter), and naming the tree's fields for the form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.segment_form import (
    FILTER_LISTS,
    GROUP_TYPES,
    INDEX,
    FilterForm,
    NodeForm,
    apply_defaults,
    new_node_id,
    walk,
)
from engine.errors import InvalidInput

# -- editing the tree --------------------------------------------------------------------------------


def new_node(kind: str, key: str) -> NodeForm:
    node = NodeForm(key=key, type=kind, id=new_node_id())
    apply_defaults(node)
    return node


def new_definition() -> dict[str, Any]:
    """What a new segment starts with: an And holding one empty trait condition."""
    trait = {"type": "Trait", "id": new_node_id(), "path": "", "operator": {"type": "Equals", "value": ""}}
    return {"entryNode": {"type": "And", "id": new_node_id(), "children": [trait["id"]]}, "nodes": [trait]}


def apply_action(root: NodeForm, action: str) -> None:
    """Apply one builder button: `add-child:<key>`, `remove:<key>`, `add-filter:<key>:<list>` or
    `remove-filter:<key>:<list>:<index>`.

    :raises InvalidInput: an action no builder renders, or one about a node the form does not have.
    """
    verb, *args = action.split(":")
    found = {node.key: node for node, _ in walk(root)}
    node = found.get(args[0]) if args else None
    if node is None:
        raise InvalidInput(f"action {action!r} names no node of the form", field="action")
    if verb == "add-child" and len(args) == 1 and node.type in GROUP_TYPES:
        node.children.append(new_node("Trait", str(max(int(key) for key in found) + 1)))
    elif verb == "remove" and len(args) == 1 and node is not root:
        for parent in found.values():
            parent.children = [child for child in parent.children if child is not node]
    elif verb == "add-filter" and len(args) == 2 and args[1] in FILTER_LISTS.get(node.type, {}):
        node.filters.setdefault(args[1], []).append(FilterForm())
    elif verb == "remove-filter" and len(args) == 3 and INDEX.match(args[2]):
        rows = node.rows(args[1])
        if int(args[2]) < len(rows):
            del rows[int(args[2])]
    else:
        raise InvalidInput(f"action {action!r} is not one the builder offers", field="action")


def assign_names(root: NodeForm) -> NodeForm:
    """Give every node, filter row and operator its input-name prefix, keys numbered in tree order."""
    for index, (node, _) in enumerate(walk(root)):
        node.key = str(index)
        node.prefix = f"node.{index}"
        node.operator.prefix = f"{node.prefix}.operator"
        for list_name, rows in node.filters.items():
            for position, row in enumerate(rows):
                row.prefix = f"{node.prefix}.{list_name}.{position}"
                row.operator.prefix = f"{row.prefix}.operator"
    return root


def fields_of(root: NodeForm) -> list[tuple[str, str]]:
    """The inputs the builder renders for `root` (after `assign_names`), in document order; what a
    browser posts back. Kept beside the template for tests and non-browser clients."""
    fields: list[tuple[str, str]] = []
    parents: Mapping[str, str] = {
        child.key: node.key for node, _ in walk(root) for child in node.children if node.type in GROUP_TYPES
    }
    for node, _ in walk(root):
        prefix = node.prefix
        fields += [(f"{prefix}.type", node.type), (f"{prefix}.id", node.id)]
        fields += [(f"{prefix}.parent", parents.get(node.key, "")), (f"{prefix}.was", node.type)]
        fields += [(f"{prefix}.{name}", value) for name, value in node.values.items()]
        fields += [(f"{node.operator.prefix}.{name}", value) for name, value in node.operator.values.items()]
        for rows in node.filters.values():
            for row in rows:
                fields.append((f"{row.prefix}.path", row.path))
                fields += [(f"{row.operator.prefix}.{name}", v) for name, v in row.operator.values.items()]
    return fields
