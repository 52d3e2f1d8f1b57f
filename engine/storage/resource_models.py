"""Typed models of the authored resources of a workspace: user properties, segments, subscription
groups, message templates and the email/SMS provider choices.

Definitions are Dittofeed's JSON documents, stored as they are validated; the modules that own each
resource (computed properties, messaging) give them meaning.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, Timestamped, enum_column, new_id, utcnow


class ResourceType(enum.StrEnum):
    DECLARATIVE = "Declarative"
    INTERNAL = "Internal"


class ComputedPropertyStatus(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    PAUSED = "Paused"


class SubscriptionGroupType(enum.StrEnum):
    OPT_IN = "OptIn"
    OPT_OUT = "OptOut"


class ChannelType(enum.StrEnum):
    EMAIL = "Email"
    MOBILE_PUSH = "MobilePush"
    SMS = "Sms"
    WEBHOOK = "Webhook"


def _workspace_id() -> Mapped[str]:
    return mapped_column(String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)


class UserProperty(Timestamped, Base):
    __tablename__ = "user_properties"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = _workspace_id()
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    resource_type: Mapped[ResourceType] = enum_column(ResourceType, "resource_type", ResourceType.DECLARATIVE)
    status: Mapped[ComputedPropertyStatus] = enum_column(
        ComputedPropertyStatus, "computed_property_status", ComputedPropertyStatus.RUNNING
    )
    example_value: Mapped[str | None] = mapped_column(Text)
    definition_updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Segment(Timestamped, Base):
    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = _workspace_id()
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    resource_type: Mapped[ResourceType] = enum_column(ResourceType, "resource_type", ResourceType.DECLARATIVE)
    status: Mapped[ComputedPropertyStatus] = enum_column(
        ComputedPropertyStatus, "computed_property_status", ComputedPropertyStatus.RUNNING
    )
    subscription_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("subscription_groups.id", ondelete="SET NULL")
    )
    definition_updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubscriptionGroup(Timestamped, Base):
    __tablename__ = "subscription_groups"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = _workspace_id()
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[SubscriptionGroupType] = enum_column(SubscriptionGroupType, "subscription_group_type")
    channel: Mapped[ChannelType] = enum_column(ChannelType, "channel_type")


class MessageTemplate(Timestamped, Base):
    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = _workspace_id()
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any] | None]
    draft: Mapped[dict[str, Any] | None]
    resource_type: Mapped[ResourceType] = enum_column(ResourceType, "resource_type", ResourceType.DECLARATIVE)


class EmailProvider(Timestamped, Base):
    """One configured email provider of a workspace; its credentials live in the referenced secret."""

    __tablename__ = "email_providers"
    __table_args__ = (UniqueConstraint("workspace_id", "type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = _workspace_id()
    type: Mapped[str] = mapped_column(String(32))
    secret_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("secrets.id", ondelete="SET NULL"))


class SmsProvider(Timestamped, Base):
    __tablename__ = "sms_providers"
    __table_args__ = (UniqueConstraint("workspace_id", "type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = _workspace_id()
    type: Mapped[str] = mapped_column(String(32))
    secret_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("secrets.id", ondelete="SET NULL"))


class DefaultEmailProvider(Timestamped, Base):
    __tablename__ = "default_email_providers"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    email_provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("email_providers.id", ondelete="CASCADE")
    )
    from_address: Mapped[str | None] = mapped_column(Text)


class DefaultSmsProvider(Timestamped, Base):
    __tablename__ = "default_sms_providers"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    sms_provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("sms_providers.id", ondelete="CASCADE")
    )


class SegmentIOConfiguration(Timestamped, Base):
    """A workspace's Segment source: the shared secret Segment signs its webhook deliveries with.

    Dittofeed keeps the secret in plaintext and so must we, since verifying an HMAC needs the key; it is
    never logged and never returned by a read.
    """

    __tablename__ = "segment_io_configurations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True
    )
    shared_secret: Mapped[str] = mapped_column(Text)
