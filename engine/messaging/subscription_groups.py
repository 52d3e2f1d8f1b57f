"""Subscription groups as resources (Dittofeed §6.9, §7.5): listing, the upsert that keeps each
group's two Internal segments in step with it, and deletion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.bootstrap import add_subscription_group
from engine.definitions import check_storable
from engine.errors import InvalidInput, NotFound
from engine.resource_lookup import NameTaken, find_for_upsert, find_in_workspace, parse_resource_id
from engine.resources import epoch_ms
from engine.storage.models import new_id, utcnow
from engine.storage.resource_models import ChannelType, Segment, SubscriptionGroup, SubscriptionGroupType


class SubscriptionGroupBadValues(InvalidInput):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field=field, body={"type": "BadValues", "message": message})


@dataclass(frozen=True)
class SubscriptionGroupUpsert:
    channel: ChannelType
    type: SubscriptionGroupType
    id: str | None = None
    name: str | None = None


def subscription_group_resource(session: Session, group: SubscriptionGroup) -> dict[str, Any]:
    """The group as Dittofeed's `SavedSubscriptionGroupResource`."""
    resource: dict[str, Any] = {
        "id": group.id,
        "workspaceId": group.workspace_id,
        "name": group.name,
        "channel": group.channel.value,
        "type": group.type.value,
        "createdAt": epoch_ms(group.created_at),
        "updatedAt": epoch_ms(group.updated_at),
    }
    for segment in _segments(session, group):
        key = "unsubscribedSegmentId" if segment.name.startswith(_UNSUBSCRIBED) else "segmentId"
        resource[key] = segment.id
    return resource


def list_subscription_groups(session: Session, workspace_id: str) -> list[SubscriptionGroup]:
    query = select(SubscriptionGroup).where(SubscriptionGroup.workspace_id == workspace_id)
    return list(session.scalars(query.order_by(SubscriptionGroup.created_at, SubscriptionGroup.name)))


def upsert_subscription_group(
    session: Session, workspace_id: str, upsert: SubscriptionGroupUpsert
) -> SubscriptionGroup:
    """Find by `id`, else by `name`; create when absent (a name is then required).

    :raises ResourceIdError: `id` is not a UUID.
    :raises SubscriptionGroupBadValues: neither id nor name, or a new group without a name.
    :raises NameTaken: the name is another group's, or the id another workspace's.
    """
    check_storable(upsert.name, "body/name")
    group_id = parse_resource_id(upsert.id, "subscription group")
    if group_id is None and upsert.name is None:
        raise SubscriptionGroupBadValues("body/name is required when no id is given", "body/name")
    group = find_for_upsert(session, SubscriptionGroup, workspace_id, group_id, upsert.name)
    try:
        if group is None:
            if upsert.name is None:
                raise SubscriptionGroupBadValues(
                    "body/name is required to create a subscription group", "body/name"
                )
            return add_subscription_group(
                session,
                workspace_id,
                group_id=group_id or new_id(),
                name=upsert.name,
                channel=upsert.channel,
                group_type=upsert.type,
            )
        if upsert.name is not None:
            group.name = upsert.name
        group.channel = upsert.channel
        if group.type != upsert.type:
            group.type = upsert.type
            _retype_segments(session, group)
        session.flush()
    except IntegrityError:
        raise NameTaken() from None
    return group


def delete_subscription_group(session: Session, workspace_id: str, group_id: str) -> None:
    """Delete the group and its Internal segments. :raises NotFound: no such group."""
    group = find_in_workspace(session, SubscriptionGroup, workspace_id, group_id)
    if group is None:
        raise NotFound("Subscription group not found")
    for segment in _segments(session, group):
        session.delete(segment)
    session.delete(group)
    session.flush()


_UNSUBSCRIBED = "subscriptionGroup-unsubscribed-"


def _segments(session: Session, group: SubscriptionGroup) -> list[Segment]:
    return list(
        session.scalars(
            select(Segment).where(
                Segment.workspace_id == group.workspace_id, Segment.subscription_group_id == group.id
            )
        )
    )


def _retype_segments(session: Session, group: SubscriptionGroup) -> None:
    """The main segment's node carries the group type: a new type is a new definition to compute."""
    for segment in _segments(session, group):
        entry = segment.definition.get("entryNode", {})
        if entry.get("type") == "SubscriptionGroup":
            segment.definition = {
                **segment.definition,
                "entryNode": {**entry, "subscriptionGroupType": group.type.value},
            }
            segment.definition_updated_at = utcnow()
