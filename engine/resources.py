"""The conventions every authored resource's wire form shares (UUID ids, epoch-millisecond
timestamps), and the resource index of Dittofeed §6.13: the names and ids of a workspace's Declarative
resources, for pickers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.storage.resource_models import (
    ComputedPropertyStatus,
    MessageTemplate,
    ResourceType,
    Segment,
    SubscriptionGroup,
    UserProperty,
)

# A field an upsert request did not send, where None means "clear it".
UNSET: Any = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The `uuid` package's validate(): canonical form, versions 1-8, plus the nil and max UUIDs.
_UUID = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$",
    re.IGNORECASE,
)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as Dittofeed's resources give their timestamps."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(moment: datetime) -> str:
    """JavaScript's Date.toISOString(): UTC, milliseconds, `Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def canonical_uuid(value: str) -> str | None:
    """`value` as a lowercase UUID (how Postgres' uuid columns give it back), or None if it is not one."""
    return value.lower() if _UUID.match(value) else None


@dataclass(frozen=True)
class ResourceIndexRequest:
    segments: bool = False
    user_properties: bool = False
    subscription_groups: bool = False
    message_templates: bool = False


def resource_index(session: Session, workspace_id: str, wanted: ResourceIndexRequest) -> dict[str, Any]:
    """The asked-for kinds of Declarative resources as `{id, name, …}`, each kind ordered by name.

    Segments are listed only while Running, as upstream does: paused or manual segments are not
    offered to pickers.
    """
    index: dict[str, Any] = {}
    if wanted.segments:
        index["segments"] = [
            {"id": row.id, "name": row.name}
            for row in session.execute(
                select(Segment.id, Segment.name)
                .where(
                    Segment.workspace_id == workspace_id,
                    Segment.resource_type == ResourceType.DECLARATIVE,
                    Segment.status == ComputedPropertyStatus.RUNNING,
                )
                .order_by(Segment.name)
            )
        ]
    if wanted.user_properties:
        index["userProperties"] = [
            {"id": row.id, "name": row.name}
            for row in session.execute(
                select(UserProperty.id, UserProperty.name)
                .where(
                    UserProperty.workspace_id == workspace_id,
                    UserProperty.resource_type == ResourceType.DECLARATIVE,
                )
                .order_by(UserProperty.name)
            )
        ]
    if wanted.subscription_groups:
        index["subscriptionGroups"] = [
            {"id": row.id, "name": row.name, "channel": row.channel.value}
            for row in session.execute(
                select(SubscriptionGroup.id, SubscriptionGroup.name, SubscriptionGroup.channel)
                .where(SubscriptionGroup.workspace_id == workspace_id)
                .order_by(SubscriptionGroup.name)
            )
        ]
    if wanted.message_templates:
        index["messageTemplates"] = [
            _template_entry(template)
            for template in session.scalars(
                select(MessageTemplate)
                .where(
                    MessageTemplate.workspace_id == workspace_id,
                    MessageTemplate.resource_type == ResourceType.DECLARATIVE,
                )
                .order_by(MessageTemplate.name)
            )
        ]
    return index


def _template_entry(template: MessageTemplate) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": template.id, "name": template.name}
    # A template's channel is its definition's type, else its draft's (§6.1).
    for document in (template.definition, template.draft):
        if isinstance(document, dict) and isinstance(document.get("type"), str):
            entry["channel"] = document["type"]
            break
    return entry
