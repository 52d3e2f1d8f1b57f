"""Typed models of broadcasts (Dittofeed's `Broadcast`, V1 and V2 in one table).

A V2 broadcast carries its configuration and status; its recipients and their sends live in the send
ledger (`send_models`). The runtime columns say where its execution is: when it may send its next
batch (the rate limit, shared by every worker) and why it failed.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, Timestamped, enum_column, new_id


class BroadcastStatus(enum.StrEnum):
    # V2
    DRAFT = "Draft"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    FAILED = "Failed"
    # V1
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    TRIGGERED = "Triggered"


class Broadcast(Timestamped, Base):
    __tablename__ = "broadcasts"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(String(2), default="V2")
    segment_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("segments.id", ondelete="SET NULL"))
    message_template_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("message_templates.id", ondelete="SET NULL")
    )
    subscription_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("subscription_groups.id", ondelete="SET NULL")
    )
    journey_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("journeys.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any] | None]
    status: Mapped[BroadcastStatus] = enum_column(BroadcastStatus, "broadcast_status", BroadcastStatus.DRAFT)
    # A naive local datetime ("2026-11-22T09:00"), read in the config's timezone(s), as upstream.
    scheduled_at: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    triggered_at: Mapped[datetime | None]
    # Runtime: set once the recipients are in the ledger; the next batch may not start before
    # `next_batch_at` (rate limit); `error` says why the broadcast failed or paused itself.
    recipients_loaded_at: Mapped[datetime | None]
    next_batch_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
