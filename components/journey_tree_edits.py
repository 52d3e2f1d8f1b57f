"""Edits and walks of a journey definition (Dittofeed §7.3) as the journey editor makes them: a new
journey's definition, adding a node on an edge, removing one (its parents re-linked to its
continuation), changing a node's or the entry's fields from a posted form, and adding and removing
the branches of wait-for and random-cohort nodes. (How a definition is drawn is
components.journey_editing's.)

Pure functions over the JSON-shaped definition (`{entryNode, exitNode, nodes}`): every edit returns a
new definition and leaves its argument alone. Whether the result may be published is the engine's
call (engine.journeys.resources); these edits only keep the graph connected and the fields typed, so
an unfinished draft (a message without its template, say) is still a draft the editor can show.
"""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import InvalidInput, NotFound
from engine.journeys.definition import ENTRY, EVENT_ENTRY, EXIT

ENTRY_TYPES = (ENTRY, EVENT_ENTRY)
# What the editor offers to add, in its menu's order (RateLimitNode is declared but does nothing).
ADDABLE = ("MessageNode", "DelayNode", "WaitForNode", "SegmentSplitNode", "RandomCohortNode")
DELAY_TYPES = ("Second", "LocalTime", "UserProperty")
# Units a duration is entered in, largest first, and their seconds.
UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_INDEXED_SLOT = re.compile(r"^(segmentChildren|children)\.(\d+)$")
Definition = dict[str, Any]
Fields = Mapping[str, str | list[str]]


def new_node_id() -> str:
    return str(uuid.uuid4())


def new_definition() -> Definition:
    """A new journey: a segment entry (segment still to choose) straight to the exit."""
    return {
        "entryNode": {"type": ENTRY, "segment": "", "child": EXIT},
        "exitNode": {"type": EXIT},
        "nodes": [],
    }


def new_node(kind: str, then: str, node_id: str | None = None) -> dict[str, Any]:
    """A node of `kind` whose first way out leads to `then` (the others to the exit).

    :raises InvalidInput: naming `type`, when the editor does not add that kind of node.
    """
    node_id = node_id or new_node_id()
    if kind == "MessageNode":
        return {"type": kind, "id": node_id, "variant": {"type": "Email", "templateId": ""}, "child": then}
    if kind == "DelayNode":
        return {"type": kind, "id": node_id, "variant": {"type": "Second", "seconds": 86400}, "child": then}
    if kind == "WaitForNode":
        segment_children = [{"id": then, "segmentId": ""}]
        return {
            "type": kind,
            "id": node_id,
            "timeoutSeconds": 86400,
            "timeoutChild": EXIT,
            "segmentChildren": segment_children,
        }
    if kind == "SegmentSplitNode":
        variant = {"type": "Boolean", "segment": "", "trueChild": then, "falseChild": EXIT}
        return {"type": kind, "id": node_id, "variant": variant}
    if kind == "RandomCohortNode":
        children = [{"id": then, "percent": 50, "name": "A"}, {"id": EXIT, "percent": 50, "name": "B"}]
        return {"type": kind, "id": node_id, "children": children}
    raise InvalidInput(f"type must be one of {', '.join(ADDABLE)}", field="type")


# -- edges -------------------------------------------------------------------------------------------


def slots(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(slot, target id) of every way out of `node`, in the order the editor draws them."""
    kind = node.get("type")
    if kind in (*ENTRY_TYPES, "MessageNode", "DelayNode"):
        return [("child", str(node.get("child", EXIT)))]
    if kind == "SegmentSplitNode":
        variant = node.get("variant") or {}
        return [
            ("trueChild", str(variant.get("trueChild", EXIT))),
            ("falseChild", str(variant.get("falseChild", EXIT))),
        ]
    if kind == "WaitForNode":
        found = [
            (f"segmentChildren.{i}", str(c.get("id", EXIT)))
            for i, c in enumerate(node.get("segmentChildren", []))
        ]
        return [*found, ("timeoutChild", str(node.get("timeoutChild", EXIT)))]
    if kind == "RandomCohortNode":
        return [(f"children.{i}", str(c.get("id", EXIT))) for i, c in enumerate(node.get("children", []))]
    return []


def _set_slot(node: dict[str, Any], slot: str, target: str) -> None:
    if slot in ("trueChild", "falseChild"):
        node["variant"][slot] = target
        return
    indexed = _INDEXED_SLOT.match(slot)
    if indexed:
        node[indexed.group(1)][int(indexed.group(2))]["id"] = target
        return
    node[slot] = target


def node_in(definition: Definition, node_id: str) -> dict[str, Any]:
    """The entry (by `EntryNode`/`EventEntryNode`) or the body node with that id.

    :raises NotFound: the definition has no such node (the page is older than the journey).
    """
    entry: dict[str, Any] = definition["entryNode"]
    if node_id in ENTRY_TYPES and entry.get("type") == node_id:
        return entry
    for node in definition["nodes"]:
        if node.get("id") == node_id:
            found: dict[str, Any] = node
            return found
    raise NotFound(f"nodeId {node_id} names no node of this journey; reload the editor")


def add_node(definition: Definition, parent_id: str, slot: str, kind: str) -> tuple[Definition, str]:
    """A copy with a new `kind` node on the edge `slot` of `parent_id`, leading on to where that edge
    led; and the new node's id.

    :raises InvalidInput: naming `slot` or `type`.
    :raises NotFound: no node `parent_id`.
    """
    edited = copy.deepcopy(definition)
    parent = node_in(edited, parent_id)
    targets = dict(slots(parent))
    if slot not in targets:
        raise InvalidInput(f"slot {slot} is not a way out of node {parent_id}", field="slot")
    node = new_node(kind, targets[slot])
    _set_slot(parent, slot, node["id"])
    position = next((i + 1 for i, n in enumerate(edited["nodes"]) if n.get("id") == parent_id), 0)
    edited["nodes"].insert(position, node)
    return edited, node["id"]


def remove_node(definition: Definition, node_id: str) -> Definition:
    """A copy without the node: the edges into it lead to its continuation (its first way out: the
    child, the "true" branch, the first segment or cohort), and what only its other branches reached
    is removed with it.

    :raises InvalidInput: naming `nodeId`, for the entry.
    :raises NotFound: no such body node.
    """
    if node_id in ENTRY_TYPES:
        raise InvalidInput("nodeId: the entry cannot be removed; change its type instead", field="nodeId")
    edited = copy.deepcopy(definition)
    node = node_in(edited, node_id)
    ways = slots(node)
    then = ways[0][1] if ways else EXIT
    then = EXIT if then == node_id else then
    for other in [edited["entryNode"], *edited["nodes"]]:
        for slot, target in slots(other):
            if target == node_id:
                _set_slot(other, slot, then)
    before = set(reachable(definition))
    edited["nodes"] = [n for n in edited["nodes"] if n is not node]
    still = set(reachable(edited))
    # Keep what was unreachable already (nothing this edit did); drop what it cut off.
    edited["nodes"] = [n for n in edited["nodes"] if n.get("id") in still or n.get("id") not in before]
    return edited


def add_branch(definition: Definition, node_id: str) -> Definition:
    """A copy with one more way out of a wait-for (a segment) or random cohort (a cohort), to the exit.

    :raises InvalidInput: naming `nodeId`, for a node without branches to add.
    """
    edited = copy.deepcopy(definition)
    node = node_in(edited, node_id)
    if node.get("type") == "WaitForNode":
        node["segmentChildren"].append({"id": EXIT, "segmentId": ""})
    elif node.get("type") == "RandomCohortNode":
        letter = chr(ord("A") + len(node["children"]) % 26)
        node["children"].append({"id": EXIT, "percent": 0, "name": letter})
    else:
        raise InvalidInput(f"nodeId {node_id} has no branches to add", field="nodeId")
    return edited


def remove_branch(definition: Definition, node_id: str, index: int) -> Definition:
    """A copy without branch `index` of a wait-for or random cohort (one must remain); the nodes only
    that branch reached go with it.

    :raises InvalidInput: naming `branch`.
    """
    edited = copy.deepcopy(definition)
    node = node_in(edited, node_id)
    key = {"WaitForNode": "segmentChildren", "RandomCohortNode": "children"}.get(str(node.get("type")))
    if key is None or not 0 <= index < len(node[key]) or len(node[key]) < 2:
        raise InvalidInput("branch: that branch cannot be removed (one must remain)", field="branch")
    before = set(reachable(definition))
    del node[key][index]
    still = set(reachable(edited))
    edited["nodes"] = [n for n in edited["nodes"] if n.get("id") in still or n.get("id") not in before]
    return edited


def reachable(definition: Definition) -> list[str]:
    """Ids of the body nodes reachable from the entry, in the order the editor draws them."""
    by_id = {str(n.get("id")): n for n in definition["nodes"]}
    seen: list[str] = []
    stack = [target for _, target in reversed(slots(definition["entryNode"]))]
    while stack:
        current = stack.pop()
        if current in by_id and current not in seen:
            seen.append(current)
            stack.extend(target for _, target in reversed(slots(by_id[current])))
    return seen


# -- fields ------------------------------------------------------------------------------------------


def update_entry(definition: Definition, fields: Fields) -> Definition:
    """A copy whose entry is what the entry form posted: `entryType` EntryNode (`segment`, `reEnter`)
    or EventEntryNode (`event`, `key`); the entry keeps its child.

    :raises InvalidInput: naming the field.
    """
    edited = copy.deepcopy(definition)
    child = edited["entryNode"].get("child", EXIT)
    kind = _text(fields, "entryType")
    if kind == ENTRY:
        entry: dict[str, Any] = {"type": ENTRY, "segment": _text(fields, "segment"), "child": child}
        if _checked(fields, "reEnter"):
            entry["reEnter"] = True
    elif kind == EVENT_ENTRY:
        entry = {"type": EVENT_ENTRY, "event": _required(fields, "event"), "child": child}
        if key := _text(fields, "key").strip():
            entry["key"] = key
    else:
        raise InvalidInput("entryType must be EntryNode or EventEntryNode", field="entryType")
    edited["entryNode"] = entry
    return edited


def update_node(
    definition: Definition, node_id: str, fields: Fields, template_channels: Mapping[str, str]
) -> Definition:
    """A copy whose node `node_id` has the fields its form posted; its edges are kept.

    `template_channels` maps the workspace's template ids to their channel: a message node takes the
    channel of the template it sends.

    :raises InvalidInput: naming the field.
    :raises NotFound: no such node.
    """
    edited = copy.deepcopy(definition)
    node = node_in(edited, node_id)
    kind = node.get("type")
    if kind == "DelayNode":
        node["variant"] = _delay_variant(fields)
    elif kind == "MessageNode":
        _update_message(node, fields, template_channels)
    elif kind == "SegmentSplitNode":
        _set_optional(node, "name", _text(fields, "name").strip())
        node["variant"]["segment"] = _text(fields, "segment")
    elif kind == "WaitForNode":
        node["timeoutSeconds"] = _duration(fields, "timeout")
        for index, child in enumerate(node["segmentChildren"]):
            child["segmentId"] = _text(fields, f"segmentId.{index}")
    elif kind == "RandomCohortNode":
        for index, child in enumerate(node["children"]):
            child["percent"] = _number(fields, f"percent.{index}", low=0, high=100)
            child["name"] = _text(fields, f"cohortName.{index}").strip() or chr(ord("A") + index % 26)
    else:
        raise InvalidInput(f"nodeId {node_id} has no fields to edit", field="nodeId")
    return edited


def _update_message(node: dict[str, Any], fields: Fields, template_channels: Mapping[str, str]) -> None:
    _set_optional(node, "name", _text(fields, "name").strip())
    template_id = _text(fields, "templateId")
    if template_id and template_id not in template_channels:
        raise InvalidInput("templateId names no message template of this workspace", field="templateId")
    channel = template_channels.get(template_id) or node["variant"].get("type", "Email")
    variant = node["variant"] if node["variant"].get("type") == channel else {"type": channel}
    node["variant"] = {**variant, "templateId": template_id}
    _set_optional(node, "subscriptionGroupId", _text(fields, "subscriptionGroupId"))
    for flag in ("skipOnFailure", "syncProperties"):
        _set_optional(node, flag, True if _checked(fields, flag) else None)


def _delay_variant(fields: Fields) -> dict[str, Any]:
    kind = _text(fields, "delayType")
    if kind == "Second":
        return {"type": "Second", "seconds": _duration(fields, "delay")}
    if kind == "LocalTime":
        variant: dict[str, Any] = {
            "type": "LocalTime",
            "hour": int(_number(fields, "hour", low=0, high=23, whole=True)),
        }
        if _text(fields, "minute").strip():
            variant["minute"] = int(_number(fields, "minute", low=0, high=59, whole=True))
        days = _list(fields, "allowedDaysOfWeek")
        if days:
            if any(day not in "0123456" or len(day) != 1 for day in days):
                raise InvalidInput(
                    "allowedDaysOfWeek must be days 0 (Sunday) to 6", field="allowedDaysOfWeek"
                )
            variant["allowedDaysOfWeek"] = sorted({int(day) for day in days})
        if zone := _text(fields, "defaultTimezone").strip():
            _check_zone(zone)
            variant["defaultTimezone"] = zone
        return variant
    if kind == "UserProperty":
        variant = {"type": "UserProperty", "userProperty": _required(fields, "userProperty")}
        if _text(fields, "offsetSeconds").strip():
            variant["offsetSeconds"] = _number(fields, "offsetSeconds", low=0)
            direction = _text(fields, "offsetDirection") or "after"
            if direction not in ("after", "before"):
                raise InvalidInput("offsetDirection must be after or before", field="offsetDirection")
            variant["offsetDirection"] = direction
        return variant
    raise InvalidInput(f"delayType must be one of {', '.join(DELAY_TYPES)}", field="delayType")


def _check_zone(zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"defaultTimezone {zone} is not an IANA time zone", field="defaultTimezone"
        ) from None


def _duration(fields: Fields, prefix: str) -> float:
    """`<prefix>Amount` in `<prefix>Unit` (days, hours, minutes, seconds), as seconds."""
    unit = _text(fields, f"{prefix}Unit") or "seconds"
    if unit not in UNITS:
        raise InvalidInput(f"{prefix}Unit must be days, hours, minutes or seconds", field=f"{prefix}Unit")
    amount = _number(fields, f"{prefix}Amount", low=0)
    seconds = amount * UNITS[unit]
    return int(seconds) if float(seconds).is_integer() else seconds


def _text(fields: Fields, name: str) -> str:
    value = fields.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters", field=name)
    return value


def _list(fields: Fields, name: str) -> list[str]:
    value = fields.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def _required(fields: Fields, name: str) -> str:
    value = _text(fields, name).strip()
    if not value:
        raise InvalidInput(f"{name} must not be empty", field=name)
    return value


def _checked(fields: Fields, name: str) -> bool:
    return _text(fields, name) in ("true", "on")


def _number(
    fields: Fields, name: str, *, low: float, high: float | None = None, whole: bool = False
) -> float:
    text = _text(fields, name).strip()
    bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
    message = f"{name} must be a {'whole ' if whole else ''}number {bounds}"
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(message, field=name) from None
    out_of_bounds = value < low or (high is not None and value > high)
    if not math.isfinite(value) or out_of_bounds or (whole and not value.is_integer()):
        raise InvalidInput(message, field=name)
    return int(value) if value.is_integer() else value


def _set_optional(node: dict[str, Any], key: str, value: Any) -> None:
    if value in (None, ""):
        node.pop(key, None)
    else:
        node[key] = value
