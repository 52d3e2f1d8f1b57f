"""Journeys as resources (Dittofeed §6.4): listing, the upsert with upstream's semantics (find by id
else name, status transitions, draft clearing), deletion, per-node stats, and the wire form of
`SavedJourneyResource`.

A definition is parsed by engine.journeys.definition and then checked against the workspace: every
child names a node of the definition, every segment, template and subscription group it names is
this workspace's, and upstream's constraint violations (§7.3) hold. It is stored exactly as sent.
Running journeys is engine.journeys.runner's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import analysis
from engine.definitions import check_storable, is_manual
from engine.errors import InvalidInput
from engine.journeys.definition import (
    ENTRY,
    EVENT_ENTRY,
    EXIT,
    DelayNode,
    EventEntryNode,
    JourneyDefinition,
    MessageNode,
    RandomCohortNode,
    SegmentEntryNode,
    SegmentSplitNode,
    WaitForNode,
    parse_journey,
)
from engine.resource_lookup import find_in_workspace, parse_resource_id
from engine.resources import UNSET, canonical_uuid, epoch_ms
from engine.storage.event_store import EventStore
from engine.storage.journey_models import Journey, JourneyStatus
from engine.storage.models import utcnow
from engine.storage.resource_models import MessageTemplate, ResourceType, Segment, SubscriptionGroup

WHERE = "body/definition"
# Node ids the definition addresses by type; no body node may take one.
_RESERVED_IDS = frozenset({ENTRY, EVENT_ENTRY, EXIT})


class JourneyUpsertError(InvalidInput):
    """One of upstream's typed upsert refusals: `{"type": error_type, "message": message}`."""

    def __init__(self, error_type: str, message: str, *, field: str) -> None:
        super().__init__(message, field=field, body={"type": error_type, "message": message})


class ConstraintViolation(InvalidInput):
    """The journey breaks rules of §7.3: `{"type": "ConstraintViolation", "violations": [...]}`."""

    def __init__(self, violations: list[dict[str, str]], *, field: str) -> None:
        message = "; ".join(violation["message"] for violation in violations)
        super().__init__(message, field=field, body={"type": "ConstraintViolation", "violations": violations})


def journey_resource(journey: Journey, *, partial: bool = False) -> dict[str, Any]:
    """The journey as Dittofeed's `SavedJourneyResource`; `partial` leaves out definition and draft
    (`getPartial`, for lists that only show names and statuses)."""
    resource: dict[str, Any] = {
        "id": journey.id,
        "workspaceId": journey.workspace_id,
        "name": journey.name,
        "status": journey.status.value,
        "canRunMultiple": journey.can_run_multiple,
        "createdAt": epoch_ms(journey.created_at),
        "updatedAt": epoch_ms(journey.updated_at),
    }
    if not partial:
        if journey.definition is not None:
            resource["definition"] = journey.definition
        if journey.draft is not None:
            resource["draft"] = journey.draft
    return resource


def list_journeys(
    session: Session,
    workspace_id: str,
    ids: Sequence[str] | None = None,
    resource_type: ResourceType | None = None,
) -> list[Journey]:
    """The workspace's journeys, oldest first, narrowed to `ids` and `resource_type` when given."""
    query = select(Journey).where(Journey.workspace_id == workspace_id)
    if ids:
        query = query.where(Journey.id.in_([canonical_uuid(i) or i for i in ids]))
    if resource_type is not None:
        query = query.where(Journey.resource_type == resource_type)
    return list(session.scalars(query.order_by(Journey.created_at, Journey.name)))


def upsert_journey(
    session: Session,
    workspace_id: str,
    *,
    id: str | None = None,
    name: str | None = None,
    definition: dict[str, Any] | None = None,
    draft: Any = UNSET,
    status: JourneyStatus | None = None,
    can_run_multiple: bool | None = None,
    now: datetime | None = None,
) -> Journey:
    """Create or update a journey: by `id` when one is given, else by name. None (and `UNSET` for
    `draft`) means "not sent": that field is left as it is. Sending a definition, or `draft=None`,
    clears the draft.

    :raises ResourceIdError: `id` is not a UUID.
    :raises InvalidInput: the definition is malformed or names what is not there (naming the field).
    :raises ConstraintViolation: the definition breaks §7.3, or a journey without one is started.
    :raises JourneyUpsertError: IdError (another workspace's id), BadValues (a new journey without a
        name), StatusTransitionError, UniqueConstraintViolation (the name is another journey's).
    """
    now = now or utcnow()
    journey_id = parse_resource_id(id, "journey")
    if name is not None:
        check_storable(name, "body/name")
    if draft is not UNSET and draft is not None:
        _check_draft(draft)
    if definition is not None:
        parsed = parse_journey(definition, where=WHERE)
        segments = _check_references(session, workspace_id, parsed)
        violations = _definition_violations(parsed, segments)
        if violations:
            raise ConstraintViolation(violations, field=WHERE)
    journey = _find(session, workspace_id, journey_id, name)
    if journey is None:
        journey = _create(session, workspace_id, journey_id, name, now)
    elif status is not None:
        _check_transition(journey.status, status)
    if name is not None:
        journey.name = name
    if definition is not None:
        journey.definition = definition
    # The published definition supersedes any draft of it, even one sent alongside (as upstream).
    if definition is not None or draft is None:
        journey.draft = None
    elif draft is not UNSET:
        journey.draft = draft
    if status is not None and status != journey.status:
        journey.status = status
        journey.status_updated_at = now
    if can_run_multiple is not None:
        journey.can_run_multiple = can_run_multiple
    journey.updated_at = now
    if journey.definition is None and journey.status != JourneyStatus.NOT_STARTED:
        violation = {"type": "CantStart", "message": "Draft journey must have a definition to be started"}
        raise ConstraintViolation([violation], field="body/status")
    _flush(session)
    return journey


def delete_journey(session: Session, workspace_id: str, journey_id: str) -> bool:
    """Delete the journey's row (its runs go with it); False when the workspace has no such journey."""
    journey = find_in_workspace(session, Journey, workspace_id, journey_id)
    if journey is None:
        return False
    session.delete(journey)
    session.flush()
    return True


def started_manual_segment(session: Session, journey: Journey, *, started_at: datetime) -> str | None:
    """The Manual segment a journey enters by, if the journey became Running at `started_at`.

    Upstream recomputes that segment at once, so that its present members enter the journey without
    waiting for the compute loop's next period.
    """
    if journey.status != JourneyStatus.RUNNING or journey.status_updated_at != started_at:
        return None
    entry = (journey.definition or {}).get("entryNode") or {}
    if entry.get("type") != ENTRY or not isinstance(entry.get("segment"), str):
        return None
    segment = _segments_by_id(session, journey.workspace_id, [entry["segment"]]).get(entry["segment"])
    return segment.id if segment is not None and is_manual(segment.definition) else None


def started_journeys(session: Session, workspace_id: str, ids: Sequence[str] = ()) -> list[Journey]:
    """The journeys `GET journeys/stats` reports on: started ones with a definition."""
    return [
        journey
        for journey in list_journeys(session, workspace_id, ids or None)
        if journey.status != JourneyStatus.NOT_STARTED and journey.definition is not None
    ]


def journeys_stats(store: EventStore, workspace_id: str, journeys: Sequence[Journey]) -> list[dict[str, Any]]:
    """Upstream's `JourneyStats` of each journey, counted in one query (`journey_stats_of`)."""
    counts = analysis.journeys_node_counts(store, workspace_id, [journey.id for journey in journeys])
    return [journey_stats_of(workspace_id, journey, counts.get(journey.id, {})) for journey in journeys]


def journey_stats_of(
    workspace_id: str, journey: Journey, counts: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """Upstream's `JourneyStats` of a journey from its node counts (`analysis.journeys_node_counts`): a
    `MessageNodeStats` for every message node that sent messages, its rates over the messages sent
    (upstream also counts failed sends in the denominator and reports `sendRate`; only sent messages
    are counted here, so it is left out).

    Edge proportions of splits, delays and wait-fors need node-processed events and are not reported.
    """
    node_stats: dict[str, Any] = {}
    if journey.definition is not None:
        for node in parse_journey(journey.definition, where="definition").nodes:
            # `counts` holds only the nodes that sent messages.
            if isinstance(node, MessageNode) and node.id in counts:
                node_stats[node.id] = _message_node_stats(node.variant.type, counts[node.id])
    return {"journeyId": journey.id, "workspaceId": workspace_id, "nodeStats": node_stats}


def _message_node_stats(channel: str, counts: dict[str, int]) -> dict[str, Any]:
    sent = counts["sent"]
    stats: dict[str, Any] = {"type": "MessageNodeStats", "proportions": {"childEdge": 100}}
    if channel == "Email":
        stats["channelStats"] = {
            "type": "Email",
            "deliveryRate": counts["delivered"] / sent,
            "openRate": counts["opened"] / sent,
            "clickRate": counts["clicked"] / sent,
            # Spam reports are not among the delivery states engine.analysis counts.
            "spamRate": 0,
        }
    elif channel == "Sms":
        stats["channelStats"] = {
            "type": "Sms",
            "deliveryRate": counts["delivered"] / sent,
            "failRate": counts["bounced"] / sent,
        }
    return stats


def _check_draft(draft: Any) -> None:
    # The draft is the dashboard's graph ({nodes, edges}): opaque here, but it must be an object.
    if not isinstance(draft, dict):
        raise InvalidInput("body/draft must be an object or null", field="body/draft")
    check_storable(draft, "body/draft")


def _find(session: Session, workspace_id: str, journey_id: str | None, name: str | None) -> Journey | None:
    if journey_id is not None:
        found = session.get(Journey, journey_id)
        if found is not None and found.workspace_id != workspace_id:
            message = "Journey id is already taken; ids must be globally unique"
            raise JourneyUpsertError("IdError", message, field="body/id")
        return found
    if name is None:
        return None
    return session.scalar(select(Journey).where(Journey.workspace_id == workspace_id, Journey.name == name))


def _create(
    session: Session, workspace_id: str, journey_id: str | None, name: str | None, now: datetime
) -> Journey:
    if not name:
        raise JourneyUpsertError("BadValues", "Name is required when creating a journey", field="body/name")
    journey = Journey(
        workspace_id=workspace_id,
        name=name,
        status=JourneyStatus.NOT_STARTED,
        can_run_multiple=False,
        resource_type=ResourceType.DECLARATIVE,
        status_updated_at=now,
        created_at=now,
        updated_at=now,
    )
    if journey_id is not None:
        journey.id = journey_id
    session.add(journey)
    return journey


def _check_transition(current: JourneyStatus, wanted: JourneyStatus) -> None:
    if wanted == JourneyStatus.PAUSED and current == JourneyStatus.NOT_STARTED:
        message = "Cannot pause a journey that has not been started"
        raise JourneyUpsertError("StatusTransitionError", message, field="body/status")
    if wanted == JourneyStatus.NOT_STARTED and current != JourneyStatus.NOT_STARTED:
        message = (
            "Cannot set a journey to NotStarted if it has already been started. Pause the journey instead."
        )
        raise JourneyUpsertError("StatusTransitionError", message, field="body/status")


def _check_references(
    session: Session, workspace_id: str, definition: JourneyDefinition
) -> dict[str, Segment]:
    """Check what the definition names; return its segments by the id it names them with.

    :raises InvalidInput: naming the first child, segment, template or subscription group that is
        not there, or a body node whose id is taken.
    """
    node_ids: set[str] = set()
    for index, node in enumerate(definition.nodes):
        field = f"{WHERE}/nodes/{index}/id"
        if node.id in _RESERVED_IDS:
            raise InvalidInput(f"{field} {node.id} is reserved for the entry and exit nodes", field=field)
        if node.id in node_ids:
            raise InvalidInput(f"{field} duplicates the id of another node", field=field)
        node_ids.add(node.id)
    for field, child in _children(definition):
        if child != EXIT and child not in node_ids:
            raise InvalidInput(f"{field} names no node of the definition", field=field)
    segment_refs = list(_segment_references(definition))
    segments = _segments_by_id(session, workspace_id, [segment_id for _, segment_id in segment_refs])
    for field, segment_id in segment_refs:
        if segment_id not in segments:
            raise InvalidInput(f"{field} names no segment of this workspace", field=field)
    messages = [(index, node) for index, node in enumerate(definition.nodes) if isinstance(node, MessageNode)]
    templates = _ids_in_workspace(
        session, MessageTemplate, workspace_id, [node.variant.templateId for _, node in messages]
    )
    groups = _ids_in_workspace(
        session, SubscriptionGroup, workspace_id, [node.subscriptionGroupId or "" for _, node in messages]
    )
    for index, node in messages:
        if _canonical(node.variant.templateId) not in templates:
            field = f"{WHERE}/nodes/{index}/variant/templateId"
            raise InvalidInput(f"{field} names no message template of this workspace", field=field)
        if node.subscriptionGroupId is not None and _canonical(node.subscriptionGroupId) not in groups:
            field = f"{WHERE}/nodes/{index}/subscriptionGroupId"
            raise InvalidInput(f"{field} names no subscription group of this workspace", field=field)
    return segments


def _definition_violations(
    definition: JourneyDefinition, segments: dict[str, Segment]
) -> list[dict[str, str]]:
    """Upstream's constraint violations of a definition (§7.3), at most one of each type.

    Keyed performed segments are computed per event-entry journey instance: an event-entry journey
    can wait only for them, and a segment-entry journey cannot use them at all.
    """
    keyed = {segment_id for segment_id, segment in segments.items() if _is_keyed(segment)}
    violations: list[dict[str, str]] = []
    if isinstance(definition.entryNode, EventEntryNode):
        waits = [
            child.segmentId
            for node in definition.nodes
            if isinstance(node, WaitForNode)
            for child in node.segmentChildren
        ]
        if any(segment_id not in keyed for segment_id in waits):
            violations.append(
                {
                    "type": "WaitForNodeAndEventEntryNode",
                    "message": "A journey with an Event Entry node can only wait for KeyedPerformed segments",
                }
            )
    else:
        if any(segment_id in keyed for _, segment_id in _body_segment_references(definition)):
            violations.append(
                {
                    "type": "KeyedPerformedSegmentEntryNode",
                    "message": "KeyedPerformed segments can only be used by journeys with an event entry",
                }
            )
    return violations


def _children(definition: JourneyDefinition) -> Iterator[tuple[str, str]]:
    """(field, node id) of every edge of the definition."""
    yield f"{WHERE}/entryNode/child", definition.entryNode.child
    for index, node in enumerate(definition.nodes):
        path = f"{WHERE}/nodes/{index}"
        if isinstance(node, DelayNode | MessageNode):
            yield f"{path}/child", node.child
        elif isinstance(node, SegmentSplitNode):
            yield f"{path}/variant/trueChild", node.variant.trueChild
            yield f"{path}/variant/falseChild", node.variant.falseChild
        elif isinstance(node, WaitForNode):
            yield f"{path}/timeoutChild", node.timeoutChild
            for child_index, child in enumerate(node.segmentChildren):
                yield f"{path}/segmentChildren/{child_index}/id", child.id
        elif isinstance(node, RandomCohortNode):
            for child_index, cohort in enumerate(node.children):
                yield f"{path}/children/{child_index}/id", cohort.id


def _segment_references(definition: JourneyDefinition) -> Iterator[tuple[str, str]]:
    """(field, segment id) of every segment the definition names."""
    if isinstance(definition.entryNode, SegmentEntryNode):
        yield f"{WHERE}/entryNode/segment", definition.entryNode.segment
    yield from _body_segment_references(definition)


def _body_segment_references(definition: JourneyDefinition) -> Iterator[tuple[str, str]]:
    """(field, segment id) of every segment the splits and wait-fors name."""
    for index, node in enumerate(definition.nodes):
        path = f"{WHERE}/nodes/{index}"
        if isinstance(node, SegmentSplitNode):
            yield f"{path}/variant/segment", node.variant.segment
        elif isinstance(node, WaitForNode):
            for child_index, child in enumerate(node.segmentChildren):
                yield f"{path}/segmentChildren/{child_index}/segmentId", child.segmentId


def _segments_by_id(session: Session, workspace_id: str, segment_ids: Sequence[str]) -> dict[str, Segment]:
    """The workspace's segments among `segment_ids`, keyed by the id as given (in any UUID spelling)."""
    wanted = {canonical for canonical in map(canonical_uuid, segment_ids) if canonical is not None}
    if not wanted:
        return {}
    found = {
        segment.id: segment
        for segment in session.scalars(
            select(Segment).where(Segment.workspace_id == workspace_id, Segment.id.in_(wanted))
        )
    }
    return {given: found[key] for given in segment_ids if (key := _canonical(given)) in found}


def _ids_in_workspace(
    session: Session,
    model: type[MessageTemplate] | type[SubscriptionGroup],
    workspace_id: str,
    ids: Sequence[str],
) -> set[str]:
    wanted = {canonical for canonical in map(canonical_uuid, ids) if canonical is not None}
    if not wanted:
        return set()
    return set(
        session.scalars(select(model.id).where(model.workspace_id == workspace_id, model.id.in_(wanted)))
    )


def _canonical(value: str) -> str:
    return canonical_uuid(value) or value


def _is_keyed(segment: Segment) -> bool:
    entry = segment.definition.get("entryNode") if isinstance(segment.definition, dict) else None
    return isinstance(entry, dict) and entry.get("type") == "KeyedPerformed"


def _flush(session: Session) -> None:
    # No savepoint: the error ends the request, and its transaction is rolled back whole.
    try:
        session.flush()
    except IntegrityError:
        raise JourneyUpsertError(
            "UniqueConstraintViolation", "Journey with this name already exists", field="body/name"
        ) from None
