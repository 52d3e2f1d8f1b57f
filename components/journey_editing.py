"""What the journeys table and the journey editor share (component "Journey"): who may change
journeys, which journeys a session reaches, the editable copy of a journey (its draft, else its
published definition), what the editor's selects offer, the per-node delivery stats, and how a
definition is drawn (the flow from its entry, durations in words, where an engine error points).

Writes follow the API's rules: in the embed shell the session's components must grant `journeys`
write and its `resourceIds` (when minted with some) must name the journey; in the console the member
must be an Author. Journeys have no component configuration to enforce (contract §3.4).

The draft is Dittofeed's free-form `draft` field; this editor keeps a definition-shaped draft there
(`{entryNode, exitNode, nodes}`). A draft of another shape (Dittofeed's own UI graph) is not read:
the editor starts from the published definition and its first edit replaces that draft.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request

from components.journey_tree_edits import UNITS, Definition, new_definition, reachable, slots
from components.screens import Screen
from engine import analysis
from engine.errors import InvalidInput, NotFound
from engine.journeys import resources as journeys
from engine.journeys.definition import ENTRY, EVENT_ENTRY, EXIT, parse_journey
from engine.messaging.subscription_groups import list_subscription_groups
from engine.messaging.templates import list_templates
from engine.resource_lookup import find_in_workspace
from engine.segments import list_segments
from engine.storage.event_store import EventStore
from engine.storage.journey_models import Journey, JourneyStatus
from engine.storage.resource_models import ResourceType
from gateway.embed_policy import check_resource_ids

COMPONENT = "Journey"
TABLE_PATH = "/journeys"
EDITOR_PATH = "/journeys/v2"
# A journey's forms post a few fields each; the body limit bounds the request anyway.
MAX_FORM_FIELDS = 2_000
Fields = dict[str, str | list[str]]


# -- access ------------------------------------------------------------------------------------------


def check_write(screen: Screen) -> None:
    screen.check_write("journeys", "journeys")


def may_write(screen: Screen) -> bool:
    return screen.may_write("journeys")


def may_create(screen: Screen) -> bool:
    return screen.may_create("journeys")


def check_named(screen: Screen, journey_id: str) -> None:
    """:raises PermissionDenied: the session's `resourceIds` do not name this journey."""
    if screen.embedded is not None:
        check_resource_ids(screen.embedded.resource_ids, None, {"id": journey_id})


def find_journey(session: Session, screen: Screen, journey_id: str) -> Journey:
    """:raises PermissionDenied: out of the session's reach. :raises NotFound: not this workspace's."""
    if not journey_id:
        raise InvalidInput("id must name a journey", field="id")
    check_named(screen, journey_id)
    journey = find_in_workspace(session, Journey, screen.workspace_id, journey_id)
    if journey is None:
        raise NotFound("Journey not found")
    return journey


def journeys_in_reach(session: Session, screen: Screen) -> list[Journey]:
    """The workspace's authored (Declarative) journeys the session may open, oldest first."""
    reach = screen.embedded.resource_ids if screen.embedded is not None else None
    found = journeys.list_journeys(session, screen.workspace_id, resource_type=ResourceType.DECLARATIVE)
    return [journey for journey in found if reach is None or journey.id in reach]


# -- the editable copy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingCopy:
    """What the editor shows and edits: the draft when it is one of this editor's, else the
    published definition, else a new journey's."""

    definition: Definition
    # The draft differs from what is published.
    unpublished: bool
    # There is a draft this editor does not read (it will be replaced).
    foreign_draft: bool


def editable(document: Any) -> bool:
    """Whether `document` is a journey definition in shape (a draft may still name nothing)."""
    if not isinstance(document, dict):
        return False
    try:
        parse_journey(document, where="draft")
    except InvalidInput:
        return False
    return True


def working_copy(journey: Journey) -> WorkingCopy:
    draft, published = journey.draft, journey.definition
    if draft is not None and editable(draft):
        return WorkingCopy(copy.deepcopy(draft), unpublished=draft != published, foreign_draft=False)
    foreign = draft is not None
    if published is not None and editable(published):
        return WorkingCopy(copy.deepcopy(published), unpublished=False, foreign_draft=foreign)
    return WorkingCopy(new_definition(), unpublished=True, foreign_draft=foreign)


# -- what the forms offer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Choices:
    """The workspace's segments, templates (with channel) and subscription groups, for the selects."""

    segments: list[tuple[str, str]]
    templates: list[tuple[str, str, str]]
    groups: list[tuple[str, str]]

    @property
    def segment_names(self) -> dict[str, str]:
        return dict(self.segments)

    @property
    def template_names(self) -> dict[str, str]:
        return {template_id: name for template_id, name, _ in self.templates}

    @property
    def template_channels(self) -> dict[str, str]:
        return {template_id: channel for template_id, _, channel in self.templates}


def read_choices(session: Session, workspace_id: str) -> Choices:
    segments = list_segments(session, workspace_id, resource_type=ResourceType.DECLARATIVE)
    templates = []
    for template in list_templates(session, workspace_id, resource_type=ResourceType.DECLARATIVE):
        document = template.definition or template.draft or {}
        templates.append((template.id, template.name, str(document.get("type", ""))))
    return Choices(
        segments=[(segment.id, segment.name) for segment in segments],
        templates=templates,
        groups=[(group.id, group.name) for group in list_subscription_groups(session, workspace_id)],
    )


def entry_summary(definition: Definition | None, segment_names: dict[str, str]) -> tuple[str, str]:
    """(kind, what) of a definition's entry: ("Segment", its name) or ("Event", its name)."""
    entry = (definition or {}).get("entryNode") or {}
    if entry.get("type") == "EventEntryNode":
        return "Event", str(entry.get("event", ""))
    if entry.get("type") == "EntryNode":
        segment = str(entry.get("segment", ""))
        return "Segment", segment_names.get(segment, segment) if segment else ""
    return "", ""


# -- stats -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeStats:
    """A message node's sends (counts over the messages it sent) and the engine's rates of them."""

    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    rates: dict[str, float]


def read_node_stats(
    store: EventStore, workspace_id: str, found: Sequence[Journey]
) -> dict[str, dict[str, NodeStats]]:
    """journey id -> per message node, what it sent, for the started journeys among `found` (one query);
    a journey never started is absent."""
    started = [
        journey
        for journey in found
        if journey.status != JourneyStatus.NOT_STARTED and journey.definition is not None
    ]
    counts = analysis.journeys_node_counts(store, workspace_id, [journey.id for journey in started])
    stats: dict[str, dict[str, NodeStats]] = {}
    for journey in started:
        by_node = counts.get(journey.id, {})
        reported = journeys.journey_stats_of(workspace_id, journey, by_node)["nodeStats"]
        stats[journey.id] = {}
        for node_id, numbers in by_node.items():
            channel = reported.get(node_id, {}).get("channelStats", {})
            rates = {name: float(value) for name, value in channel.items() if name != "type"}
            stats[journey.id][node_id] = NodeStats(**{key: numbers[key] for key in _COUNTS}, rates=rates)
    return stats


_COUNTS = ("sent", "delivered", "opened", "clicked", "bounced")


# -- forms -------------------------------------------------------------------------------------------


async def read_form(request: Request) -> Fields:
    """The posted fields; a name posted more than once (checkbox groups) keeps every value."""
    limit = request.app.state.settings.api_body_limit
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=limit)
    except HTTPException as error:
        raise InvalidInput(f"body {error.detail}", field="body") from None
    fields: Fields = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be text", field=name)
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def field_text(fields: Fields, name: str) -> str:
    value = fields.get(name, "")
    return value[0] if isinstance(value, list) else value


# -- drawing: names and durations -------------------------------------------------------------------


# What the editor calls each kind of node.
NODE_LABELS = {
    ENTRY: "Segment entry",
    EVENT_ENTRY: "Event entry",
    "MessageNode": "Message",
    "DelayNode": "Delay",
    "WaitForNode": "Wait for segment",
    "SegmentSplitNode": "Segment split",
    "RandomCohortNode": "Random cohort",
    "RateLimitNode": "Rate limit",
    EXIT: "Exit",
}


def split_duration(seconds: float) -> tuple[float, str]:
    """`seconds` as an amount of the largest unit that holds it whole (for the duration inputs)."""
    for name, size in UNITS.items():
        if seconds and seconds % size == 0:
            return seconds / size, name
    return seconds, "seconds"


def describe_duration(seconds: float) -> str:
    amount, unit = split_duration(seconds)
    shown = int(amount) if float(amount).is_integer() else amount
    return f"{shown} {unit[:-1] if shown == 1 else unit}"


# -- drawing the definition --------------------------------------------------------------------------


@dataclass
class Branch:
    """One way out of a step. A step with one way out is followed in its lane by where it leads
    (`continues`); a step with several has a lane per branch."""

    slot: str
    target_id: str
    lane: list[Step] = field(default_factory=list)
    continues: bool = False
    # The target is drawn elsewhere (two edges meet there, or a cycle).
    joins: bool = False


@dataclass
class Step:
    """A node as the editor draws it, with its ways out."""

    node_id: str
    node: dict[str, Any]
    branches: list[Branch] = field(default_factory=list)


def flow(definition: Definition) -> list[Step]:
    """The definition as lanes from its entry: each node drawn once, where first reached; an edge to
    a node drawn already is a `joins` pointer; one to the exit (or to no node) ends its lane.

    A lane runs on through nodes with one way out, so only branching nests (a long journey does not
    nest deeply).
    """
    entry = definition["entryNode"]
    by_id = {str(n.get("id")): n for n in definition["nodes"]}
    by_id[str(entry.get("type"))] = entry
    drawn: set[str] = set()

    def lane_from(node_id: str) -> list[Step]:
        lane: list[Step] = []
        while node_id in by_id and node_id not in drawn:
            drawn.add(node_id)
            step = Step(
                node_id, by_id[node_id], [Branch(slot, target) for slot, target in slots(by_id[node_id])]
            )
            lane.append(step)
            for branch in step.branches:
                branch.joins = branch.target_id in drawn
                if len(step.branches) > 1 and not branch.joins:
                    branch.lane = lane_from(branch.target_id)
            if len(step.branches) != 1 or step.branches[0].joins:
                break
            step.branches[0].continues = step.branches[0].target_id in by_id
            node_id = step.branches[0].target_id
        return lane

    return lane_from(str(entry.get("type")))


def unreachable(definition: Definition) -> list[dict[str, Any]]:
    """Body nodes no edge from the entry reaches (kept, but never run)."""
    seen = set(reachable(definition))
    return [node for node in definition["nodes"] if node.get("id") not in seen]


def locate_error(definition: Definition, engine_field: str | None) -> tuple[str, str] | None:
    """(node id, form field) of an engine error's field, e.g. `body/definition/nodes/2/variant/templateId`
    → (id of the third node, `templateId`); None when the field is not about one node."""
    parts = (engine_field or "").split("/")
    if parts[:2] != ["body", "definition"] or len(parts) < 4:
        return None
    if parts[2] == "entryNode":
        return str(definition["entryNode"].get("type")), parts[-1]
    if parts[2] != "nodes" or not parts[3].isdigit() or int(parts[3]) >= len(definition["nodes"]):
        return None
    node_id = str(definition["nodes"][int(parts[3])].get("id"))
    tail = parts[4:]
    if len(tail) >= 3 and tail[0] in ("segmentChildren", "children"):
        name = {"segmentId": "segmentId", "percent": "percent", "name": "cohortName"}.get(tail[2], tail[2])
        return node_id, f"{name}.{tail[1]}"
    return node_id, tail[-1] if tail else "id"
