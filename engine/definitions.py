"""Validating segment and user-property definitions (Dittofeed §7.0–7.2): their shapes
(engine.definition_models), and the rules beyond shapes that the compute loop relies on.

A definition is validated here and then stored exactly as the client sent it, so it reads back
byte-for-byte; fields this module does not know are kept, as upstream's TypeBox schemas allow them.
Every refusal is an `InvalidInput` naming the offending field, e.g.
``body/definition/nodes/2/children/0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.definition_models import (
    ENTRY_ONLY_NODES,
    TRAIT_ONLY_OPERATORS,
    USER_PROPERTY,
    AnyOfProperty,
    AnySegmentNode,
    GroupProperty,
    SegmentDefinition,
)
from engine.errors import InvalidInput

Parsed = TypeVar("Parsed")
# The member tags pydantic puts in the location of an error inside a `str | float` field.
_SCALAR_MEMBERS = frozenset({"str", "float"})


def validate_segment_definition(raw: Any, *, where: str = "body/definition") -> dict[str, Any]:
    """Return `raw`, unchanged, if it is a valid segment definition.

    :raises InvalidInput: naming the first offending field under `where`.
    """
    check_storable(raw, where)
    definition = parse_document(SegmentDefinition.model_validate, raw, where)
    located: list[tuple[str, AnySegmentNode]] = [(f"{where}/entryNode", definition.entryNode)]
    located += [(f"{where}/nodes/{index}", node) for index, node in enumerate(definition.nodes)]
    for path, node in located[1:]:
        if node.type in ENTRY_ONLY_NODES:
            field = f"{path}/type"
            raise InvalidInput(f"{field} {node.type} is only valid as the entry node", field=field)
    for path, node in located:
        _check_event_filters(path, node)
    _check_graph([(path, node.id, getattr(node, "children", None)) for path, node in located])
    return raw  # type: ignore[no-any-return]  # validated above as an object


def validate_user_property_definition(raw: Any, *, where: str = "body/definition") -> dict[str, Any]:
    """Return `raw`, unchanged, if it is a valid user property definition.

    :raises InvalidInput: naming the first offending field under `where`.
    """
    check_storable(raw, where)
    definition = parse_document(USER_PROPERTY.validate_python, raw, where)
    if isinstance(definition, GroupProperty):
        nodes = [
            (
                f"{where}/nodes/{index}",
                node.id or None,
                node.children if isinstance(node, AnyOfProperty) else None,
            )
            for index, node in enumerate(definition.nodes)
        ]
        if definition.entry not in {node_id for _, node_id, _ in nodes}:
            raise InvalidInput(f"{where}/entry names no node of the group", field=f"{where}/entry")
        _check_graph(nodes)
    return raw  # type: ignore[no-any-return]  # validated above as an object


def is_manual(definition: Any) -> bool:
    """Whether a stored segment definition has a Manual entry node."""
    entry = definition.get("entryNode") if isinstance(definition, dict) else None
    return isinstance(entry, dict) and entry.get("type") == "Manual"


def check_storable(value: Any, field: str) -> None:
    """Refuse what no database stores: non-finite numbers, NUL characters and lone UTF-16 surrogates
    (a JSON "\\ud800" escape decodes to one), anywhere in `value`.

    :raises InvalidInput: naming `field`.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{field} must not contain NaN or Infinity", field=field)
        if isinstance(item, str):
            _check_text(item, field)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, field)
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str, field: str) -> None:
    if "\x00" in text:
        raise InvalidInput(f"{field} must not contain a NUL character", field=field)
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} must not contain a lone UTF-16 surrogate", field=field) from None


def _check_event_filters(path: str, node: BaseModel) -> None:
    for name in ("properties", "whereProperties", "hasProperties"):
        for index, item in enumerate(getattr(node, name, None) or []):
            operator = item.operator.type
            if operator in TRAIT_ONLY_OPERATORS:
                field = f"{path}/{name}/{index}/operator/type"
                raise InvalidInput(f"{field} {operator} is not supported on event properties", field=field)


def _check_graph(nodes: list[tuple[str, str | None, list[str] | None]]) -> None:
    """Node ids are unique, every child names a node, and no node is its own descendant."""
    by_id: dict[str, tuple[str, list[str]]] = {}
    for path, node_id, children in nodes:
        if node_id is None:
            continue
        if node_id in by_id:
            raise InvalidInput(f"{path}/id duplicates the id of {by_id[node_id][0]}", field=f"{path}/id")
        by_id[node_id] = (path, children or [])
    for path, _, children in nodes:
        for index, child in enumerate(children or []):
            if child not in by_id:
                field = f"{path}/children/{index}"
                raise InvalidInput(f"{field} names no node of the definition", field=field)
    # Iterative depth-first search; a child that is still on the current path closes a cycle.
    on_path, done = set[str](), set[str]()
    for root in by_id:
        if root in done:
            continue
        stack = [(root, 0)]
        on_path.add(root)
        while stack:
            node_id, next_child = stack.pop()
            path, children = by_id[node_id]
            if next_child == len(children):
                on_path.discard(node_id)
                done.add(node_id)
                continue
            stack.append((node_id, next_child + 1))
            child = children[next_child]
            if child in on_path:
                field = f"{path}/children/{next_child}"
                raise InvalidInput(f"{field} makes the definition cyclic", field=field)
            if child not in done:
                on_path.add(child)
                stack.append((child, 0))


def parse_document(validate: Callable[[Any], Parsed], raw: Any, where: str) -> Parsed:
    """`validate(raw)`, its first error raised as an `InvalidInput` naming the field under `where`."""
    try:
        return validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        path = _located(raw, first["loc"], where)
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path += "/type"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = "must be an object"  # pydantic's wording names our model classes
        raise InvalidInput(f"{path} {message}", field=path) from None


def _located(raw: Any, loc: tuple[int | str, ...], where: str) -> str:
    """The path in the client's document of pydantic's error location.

    pydantic puts the chosen union member (a node's `type`, or `str`/`float` for a scalar union) into
    the location; walking the document alongside it tells those tags from the fields.
    """
    parts = [where]
    current = raw
    for part in loc:
        if isinstance(current, dict):
            if part == current.get("type") or (part in _SCALAR_MEMBERS and part not in current):
                continue
            # A missing required field is named all the same; nothing is below it.
            current = current.get(part) if isinstance(part, str) else None
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            continue
        parts.append(str(part))
    return "/".join(parts)
