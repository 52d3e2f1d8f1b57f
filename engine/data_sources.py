"""A workspace's data sources (Dittofeed §5.2): the SegmentIO configuration, and what a Segment webhook
delivery must be to be stored — signed with that configuration's shared secret, for a workspace that
can receive events, carrying at least `messageId` and `timestamp`.

The shared secret is a credential: it is never logged and never returned by a read (the upsert echoes
the value its caller just sent, as upstream does).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.credentials import WorkspaceIneligible
from engine.errors import NotAuthenticated, Unavailable
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType
from engine.storage.resource_models import SegmentIOConfiguration


class DataSourceType(enum.StrEnum):
    SEGMENT_IO = "SegmentIO"


class SegmentNotConfigured(Unavailable):
    """The workspace has no SegmentIO configuration, so no delivery can be verified (upstream: 503)."""


class InvalidSignature(NotAuthenticated):
    """The delivery's `x-signature` is missing or is not the HMAC of its body."""


class SegmentDelivery(BaseModel):
    """The fields a delivery must have; everything else is kept, verbatim, in the stored body.

    Stricter than upstream where the event store needs it. `type` is required: `event_type` is a
    ClickHouse enum derived from it, and a value outside the enum stores a row no later read can decode.
    `userId`, `anonymousId` and `event` must be strings (or null), as in Segment's spec: ClickHouse
    derives them with JSONExtractString, which renders other JSON values in its own number format, so
    the deduplication key could not be computed to match.
    """

    model_config = ConfigDict(extra="allow", strict=True)

    messageId: str = Field(min_length=1)
    timestamp: str
    # The names of event_schema.EVENT_TYPE.
    type: Literal["identify", "track", "page", "screen", "group", "alias"]
    userId: str | None = None
    anonymousId: str | None = None
    event: str | None = None


def segment_signature(shared_secret: str, raw_body: bytes) -> str:
    """Segment's `x-signature`: hex HMAC-SHA1 of the raw body keyed with the shared secret."""
    return hmac.new(shared_secret.encode(), raw_body, hashlib.sha1).hexdigest()


def configured_data_sources(session: Session, workspace_id: str) -> list[DataSourceType]:
    """The data source types the workspace has configured."""
    configured = session.scalar(
        select(SegmentIOConfiguration.id).where(SegmentIOConfiguration.workspace_id == workspace_id)
    )
    return [DataSourceType.SEGMENT_IO] if configured is not None else []


def upsert_segment_io(session: Session, workspace_id: str, shared_secret: str) -> str:
    """Create or replace the workspace's SegmentIO shared secret; return the configuration's id."""
    query = select(SegmentIOConfiguration).where(SegmentIOConfiguration.workspace_id == workspace_id)
    config = session.scalar(query)
    if config is None:
        try:
            with session.begin_nested():
                config = SegmentIOConfiguration(workspace_id=workspace_id, shared_secret=shared_secret)
                session.add(config)
            return config.id
        except IntegrityError:
            # A concurrent first upsert won the unique workspace_id; replace the secret it stored.
            config = session.scalars(query).one()
    config.shared_secret = shared_secret
    session.flush()
    return config.id


def delete_data_source(session: Session, workspace_id: str, source: DataSourceType) -> None:
    """Remove the workspace's configuration of `source`; removing an absent one is not an error."""
    if source is DataSourceType.SEGMENT_IO:
        session.execute(
            delete(SegmentIOConfiguration).where(SegmentIOConfiguration.workspace_id == workspace_id)
        )


def verify_segment_delivery(
    session: Session, workspace_id: str, raw_body: bytes, signature: str | None
) -> None:
    """Accept a delivery for `workspace_id` only if it is signed with the workspace's shared secret and
    the workspace can receive events.

    :raises SegmentNotConfigured: the workspace (if it exists) has no SegmentIO configuration.
    :raises InvalidSignature: no signature, or not the body's HMAC under the shared secret.
    :raises WorkspaceIneligible: the workspace is not Active, or is a Parent.
    """
    row = session.execute(
        select(SegmentIOConfiguration.shared_secret, Workspace.status, Workspace.type)
        .join(Workspace, Workspace.id == SegmentIOConfiguration.workspace_id)
        .where(SegmentIOConfiguration.workspace_id == workspace_id)
    ).one_or_none()
    if row is None:
        raise SegmentNotConfigured("SegmentIO is not configured for this workspace.")
    expected = segment_signature(row.shared_secret, raw_body)
    if signature is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise InvalidSignature("Invalid signature.")
    # Checked after the signature, so an unsigned caller learns nothing about the workspace's state.
    if row.status != WorkspaceStatus.ACTIVE or row.type == WorkspaceType.PARENT:
        raise WorkspaceIneligible("WorkspaceIneligible")
