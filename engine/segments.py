"""Segments as resources (Dittofeed §6.2): listing, the upsert with upstream's semantics, status
changes and deletion, in the wire form of `SavedSegmentResource`.

What a segment's definition means is the compute loop's business; here a definition is validated
(engine.definitions) and stored as sent. `definitionUpdatedAt` moves only when the definition really
changes, because the compute loop reads it as "computed state is stale".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.assignments import forget_computed_property
from engine.definitions import check_storable, is_manual
from engine.errors import InvalidInput, NotFound
from engine.resource_lookup import NameTaken, find_for_upsert, parse_resource_id
from engine.resources import canonical_uuid, epoch_ms
from engine.storage.event_store import EventStore
from engine.storage.models import utcnow
from engine.storage.resource_models import ComputedPropertyStatus, ResourceType, Segment, SubscriptionGroup


class ManualSegmentStatus(InvalidInput):
    """A manual segment's status is not the client's to set: it is always NotStarted."""

    def __init__(self) -> None:
        super().__init__("Cannot update the status of a manual segment.", field="id")


@dataclass(frozen=True)
class SegmentUpsert:
    """A validated `PUT segments` body; None means "not sent"."""

    name: str
    id: str | None = None
    definition: dict[str, Any] | None = None
    subscription_group_id: str | None = None
    resource_type: ResourceType | None = None
    status: ComputedPropertyStatus | None = None
    create_only: bool = False


def segment_resource(segment: Segment) -> dict[str, Any]:
    """The segment as Dittofeed's `SavedSegmentResource`."""
    resource: dict[str, Any] = {
        "id": segment.id,
        "workspaceId": segment.workspace_id,
        "name": segment.name,
        "definition": segment.definition,
        "resourceType": segment.resource_type.value,
        "status": segment.status.value,
        "createdAt": epoch_ms(segment.created_at),
        "updatedAt": epoch_ms(segment.updated_at),
        "definitionUpdatedAt": epoch_ms(segment.definition_updated_at),
    }
    if segment.subscription_group_id is not None:
        resource["subscriptionGroupId"] = segment.subscription_group_id
    return resource


def list_segments(
    session: Session,
    workspace_id: str,
    *,
    ids: Sequence[str] = (),
    resource_type: ResourceType | None = None,
) -> list[Segment]:
    """The workspace's segments, oldest first; Internal ones included unless `resource_type` says."""
    query = select(Segment).where(Segment.workspace_id == workspace_id)
    if ids:
        query = query.where(Segment.id.in_([canonical_uuid(i) or i for i in ids]))
    if resource_type is not None:
        query = query.where(Segment.resource_type == resource_type)
    return list(session.scalars(query.order_by(Segment.created_at, Segment.name)))


def find_segment(session: Session, workspace_id: str, segment_id: str, *, lock: bool = False) -> Segment:
    """:raises NotFound: no segment of the workspace has that id."""
    canonical = canonical_uuid(segment_id)
    query = select(Segment).where(Segment.workspace_id == workspace_id, Segment.id == canonical)
    segment = session.scalar(query.with_for_update() if lock else query) if canonical else None
    if segment is None:
        raise NotFound("Segment not found.")
    return segment


def upsert_segment(
    session: Session, workspace_id: str, upsert: SegmentUpsert, *, now: datetime | None = None
) -> Segment:
    """Create or update a segment: by `id` when one is given, else by name.

    :raises ResourceIdError: `id` is not a UUID.
    :raises NameTaken: the name is another segment's, or the id another
        workspace's, or `subscription_group_id` names no subscription group of the workspace.
    :raises InvalidInput: a new segment without a definition.
    """
    now = now or utcnow()
    check_storable(upsert.name, "body/name")
    segment_id = parse_resource_id(upsert.id, "segment")
    if upsert.subscription_group_id is not None:
        _check_subscription_group(session, workspace_id, upsert.subscription_group_id)
    existing = find_for_upsert(session, Segment, workspace_id, segment_id, upsert.name)
    if existing is None:
        return _create(session, workspace_id, segment_id, upsert, now)
    if upsert.create_only:
        return existing
    _update(existing, upsert, now)
    _flush(session)
    return existing


def set_segment_status(
    session: Session, workspace_id: str, segment_id: str, status: ComputedPropertyStatus
) -> Segment:
    """:raises NotFound: no such segment. :raises ManualSegmentStatus: it is a manual segment."""
    segment = find_segment(session, workspace_id, segment_id)
    if is_manual(segment.definition):
        raise ManualSegmentStatus()
    segment.status = status
    session.flush()
    return segment


def delete_segment(session: Session, store: EventStore, workspace_id: str, segment_id: str) -> None:
    """Delete the segment and everything computed for it.

    ClickHouse is cleared before the caller commits, so a store failure leaves the segment in place.
    :raises NotFound: no such segment.
    """
    segment = find_segment(session, workspace_id, segment_id)
    session.delete(segment)
    session.flush()
    forget_computed_property(store, workspace_id, segment.id)


def _create(
    session: Session, workspace_id: str, segment_id: str | None, upsert: SegmentUpsert, now: datetime
) -> Segment:
    if upsert.definition is None:
        raise InvalidInput("body/definition is required to create a segment", field="body/definition")
    manual = is_manual(upsert.definition)
    segment = Segment(
        workspace_id=workspace_id,
        name=upsert.name,
        definition=upsert.definition,
        resource_type=upsert.resource_type or ResourceType.DECLARATIVE,
        # Manual segments are updated imperatively, never computed.
        status=ComputedPropertyStatus.NOT_STARTED
        if manual
        else upsert.status or ComputedPropertyStatus.RUNNING,
        subscription_group_id=upsert.subscription_group_id,
        created_at=now,
        updated_at=now,
        definition_updated_at=now,
    )
    if segment_id is not None:
        segment.id = segment_id
    session.add(segment)
    _flush(session)
    return segment


def _update(segment: Segment, upsert: SegmentUpsert, now: datetime) -> None:
    was_manual = is_manual(segment.definition)
    segment.name = upsert.name
    if upsert.definition is not None and upsert.definition != segment.definition:
        segment.definition = upsert.definition
        segment.definition_updated_at = now
    if upsert.resource_type is not None:
        segment.resource_type = upsert.resource_type
    if upsert.subscription_group_id is not None:
        segment.subscription_group_id = upsert.subscription_group_id
    if is_manual(segment.definition):
        segment.status = ComputedPropertyStatus.NOT_STARTED
    elif upsert.status is not None:
        segment.status = upsert.status
    elif was_manual:
        # No longer manual: it is computed from now on.
        segment.status = ComputedPropertyStatus.RUNNING


def _check_subscription_group(session: Session, workspace_id: str, group_id: str) -> None:
    group = session.get(SubscriptionGroup, canonical_uuid(group_id) or group_id)
    if group is None or group.workspace_id != workspace_id:
        # Upstream answers a foreign-key violation with this type too.
        raise NameTaken(message="subscriptionGroupId names no subscription group of this workspace.")


def _flush(session: Session) -> None:
    # No savepoint: the error ends the request, and its transaction is rolled back whole.
    try:
        session.flush()
    except IntegrityError:
        raise NameTaken() from None


def count_segment_members(store: EventStore, workspace_id: str, segment_ids: Sequence[str]) -> dict[str, int]:
    """segment id -> its current members (users whose latest assignment says in), in one query that
    reads only these segments' assignments (they lead the table's key); 0 for a segment never computed."""
    if not segment_ids:
        return {}
    rows = store.query(
        "SELECT computed_property_id, countIf(in_segment) FROM (SELECT computed_property_id, user_id,"
        " argMax(segment_value, assigned_at) AS in_segment FROM computed_property_assignments_v2"
        " WHERE workspace_id = {workspace:String} AND type = 'segment'"
        " AND computed_property_id IN {segments:Array(String)} GROUP BY computed_property_id, user_id)"
        " GROUP BY computed_property_id",
        {"workspace": workspace_id, "segments": sorted(set(segment_ids))},
    )
    counts = dict.fromkeys(segment_ids, 0)
    counts.update({str(segment_id): int(count) for segment_id, count in rows})
    return counts
