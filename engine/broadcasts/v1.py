"""`POST broadcasts/execute` (Dittofeed §6.5): a V1 broadcast built in one call, with its Internal
segment, template and journey, and triggered."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.broadcasts.lifecycle import trigger_v1_broadcast
from engine.broadcasts.resources import EXECUTE_CHANNELS, check_name_free, flush_broadcast, oldest_group
from engine.definitions import check_storable, validate_segment_definition
from engine.errors import InvalidInput
from engine.journeys.definition import parse_journey
from engine.messaging import templates
from engine.messaging.template_models import validate_template_definition
from engine.resource_lookup import find_in_workspace
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.journey_models import Journey, JourneyStatus
from engine.storage.resource_models import (
    ComputedPropertyStatus,
    MessageTemplate,
    ResourceType,
    Segment,
    SubscriptionGroup,
)


def execute_broadcast(
    session: Session,
    workspace_id: str,
    broadcast_name: str,
    segment_definition: Any,
    template_definition: Any,
    subscription_group_id: str | None,
    *,
    now: datetime,
) -> str:
    """`POST broadcasts/execute`: build a V1 broadcast and trigger it; return its id.

    The id is uuid5(workspace id, `broadcast_name`), so executing the same name again finds the same
    broadcast and changes nothing. A new one gets an Internal segment of `segment_definition`, an
    Internal template of `template_definition` (Email or, unlike upstream, Sms: the channel is the
    definition's `type`), and an Internal journey with status Broadcast that sends the template to
    each member of the segment (entry → one message node → exit). Its subscription group is
    `subscription_group_id`, else the workspace's oldest group of the channel.

    :raises InvalidInput: a malformed definition, a channel other than Email or Sms, or a
        subscription group that is not one of the workspace's groups of that channel, naming the field.
    :raises NameTaken: another broadcast already has the name.
    """
    check_storable(broadcast_name, "body/broadcastName")
    segment_definition = validate_segment_definition(segment_definition, where="body/segmentDefinition")
    template_definition = validate_template_definition(
        template_definition, where="body/messageTemplateDefinition"
    )
    channel = template_definition["type"]
    if channel not in EXECUTE_CHANNELS:
        field = "body/messageTemplateDefinition/type"
        raise InvalidInput(f"{field} must be one of {', '.join(EXECUTE_CHANNELS)}", field=field)
    namespace = uuid.UUID(workspace_id)
    broadcast_id = str(uuid.uuid5(namespace, broadcast_name))
    existing = session.scalar(
        select(Broadcast.id).where(Broadcast.workspace_id == workspace_id, Broadcast.id == broadcast_id)
    )
    if existing is not None:
        return broadcast_id
    group_id = _execute_group(session, workspace_id, subscription_group_id, channel)
    check_name_free(session, workspace_id, broadcast_name, broadcast_id)
    internal_name = f"Broadcast - {broadcast_id}"
    segment = _internal_segment(
        session, workspace_id, str(uuid.uuid5(namespace, f"{broadcast_id}-segment")), internal_name,
        segment_definition, now,
    )  # fmt: skip
    template = _internal_template(
        session,
        workspace_id,
        str(uuid.uuid5(namespace, f"{broadcast_id}-message-template")),
        internal_name,
        template_definition,
    )
    journey = _internal_journey(
        session,
        workspace_id,
        str(uuid.uuid5(namespace, f"{broadcast_id}-journey")),
        internal_name,
        _journey_definition(segment.id, template.id, channel, group_id),
        now,
    )
    session.add(
        Broadcast(
            id=broadcast_id,
            workspace_id=workspace_id,
            name=broadcast_name,
            version="V1",
            status=BroadcastStatus.NOT_STARTED,
            segment_id=segment.id,
            message_template_id=template.id,
            subscription_group_id=group_id,
            journey_id=journey.id,
            created_at=now,
            updated_at=now,
        )
    )
    flush_broadcast(session)
    trigger_v1_broadcast(session, workspace_id, broadcast_id, now=now)
    return broadcast_id


def _execute_group(session: Session, workspace_id: str, group_id: str | None, channel: str) -> str | None:
    if group_id is None:
        return oldest_group(session, workspace_id, channel)
    group = find_in_workspace(session, SubscriptionGroup, workspace_id, group_id)
    if group is None or group.channel.value != channel:
        field = "body/subscriptionGroupId"
        raise InvalidInput(f"{field} names no {channel} subscription group of this workspace", field=field)
    return group.id


def _internal_segment(
    session: Session, workspace_id: str, segment_id: str, name: str, definition: dict[str, Any], now: datetime
) -> Segment:
    """The broadcast's own segment, computed only when the broadcast runs (NotStarted, as upstream)."""
    existing = session.scalar(
        select(Segment).where(Segment.workspace_id == workspace_id, Segment.name == name)
    )
    if existing is not None:
        return existing
    segment = Segment(
        id=segment_id,
        workspace_id=workspace_id,
        name=name,
        definition=definition,
        resource_type=ResourceType.INTERNAL,
        status=ComputedPropertyStatus.NOT_STARTED,
        created_at=now,
        updated_at=now,
        definition_updated_at=now,
    )
    session.add(segment)
    # Written now: the unit of work does not order inserts by foreign keys without relationships.
    session.flush()
    return segment


def _internal_template(
    session: Session, workspace_id: str, template_id: str, name: str, definition: dict[str, Any]
) -> MessageTemplate:
    """The broadcast's own template, through the template upsert so its identifierKey is checked."""
    existing = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.workspace_id == workspace_id, MessageTemplate.name == name
        )
    )
    if existing is not None:
        return existing
    upsert = templates.TemplateUpsert(
        name=name, id=template_id, definition=definition, resource_type=ResourceType.INTERNAL
    )
    return templates.upsert_template(session, workspace_id, upsert)


def _internal_journey(
    session: Session, workspace_id: str, journey_id: str, name: str, definition: dict[str, Any], now: datetime
) -> Journey:
    existing = session.scalar(
        select(Journey).where(Journey.workspace_id == workspace_id, Journey.name == name)
    )
    if existing is not None:
        return existing
    journey = Journey(
        id=journey_id,
        workspace_id=workspace_id,
        name=name,
        status=JourneyStatus.BROADCAST,
        definition=definition,
        resource_type=ResourceType.INTERNAL,
        status_updated_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(journey)
    session.flush()
    return journey


def _journey_definition(
    segment_id: str, template_id: str, channel: str, group_id: str | None
) -> dict[str, Any]:
    """Upstream's broadcast journey: every member of the segment gets the one message, then exits."""
    message: dict[str, Any] = {
        "id": "broadcast-message",
        "type": "MessageNode",
        "name": "Broadcast Message",
        "variant": {"type": channel, "templateId": template_id},
        "child": "ExitNode",
    }
    if group_id is not None:
        message["subscriptionGroupId"] = group_id
    definition = {
        "entryNode": {"type": "EntryNode", "segment": segment_id, "child": "broadcast-message"},
        "nodes": [message],
        "exitNode": {"type": "ExitNode"},
    }
    parse_journey(definition, where="journey")  # a bug here would otherwise surface in the worker
    return definition
