"""Typed models of journeys (Dittofeed's `Journey`) and of each user's passage through one (a
`JourneyRun`, what Dittofeed keeps as a Temporal user-journey workflow).

A run is durable state: the node it is at, when it is next due, and the lease of the worker that
holds it. Workers claim due runs, advance them, and record where they stopped, so a killed worker's
runs are taken over when their lease expires.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, Timestamped, enum_column, new_id, utcnow
from engine.storage.resource_models import ResourceType


class JourneyStatus(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    PAUSED = "Paused"
    BROADCAST = "Broadcast"  # the internal journey of a V1 broadcast


class Journey(Timestamped, Base):
    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[JourneyStatus] = enum_column(JourneyStatus, "journey_status", JourneyStatus.NOT_STARTED)
    definition: Mapped[dict[str, Any] | None]
    draft: Mapped[dict[str, Any] | None]
    can_run_multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    resource_type: Mapped[ResourceType] = enum_column(ResourceType, "resource_type", ResourceType.DECLARATIVE)
    status_updated_at: Mapped[datetime | None]


class RunState(enum.StrEnum):
    ACTIVE = "Active"  # due at `due_at` to run its current node
    WAITING = "Waiting"  # at a wait-for node: due at its timeout, woken early by a segment entry
    EXITED = "Exited"


class JourneyRun(Base):
    """One user's passage through a journey, from entry to exit."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        # One live run per (journey, user, instance key): `live_key` is the instance key while the run
        # is live and NULL once it exited, and NULLs never collide.
        UniqueConstraint("journey_id", "user_id", "live_key"),
        Index(None, "state", "due_at"),
        Index(None, "journey_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    journey_id: Mapped[str] = mapped_column(String(36), ForeignKey("journeys.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(Text)
    # "" for a segment-entry run; for an event-entry run, the key derived from the triggering event.
    instance_key: Mapped[str] = mapped_column(Text, default="")
    live_key: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str] = mapped_column(Text)
    state: Mapped[RunState] = enum_column(RunState, "run_state", RunState.ACTIVE)
    due_at: Mapped[datetime | None]
    # Sends tried at the current node (a message node retries transient failures).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    exited_at: Mapped[datetime | None]
    # The track event that started an event-entry run: its messageId, and its properties for templates.
    triggering_message_id: Mapped[str | None] = mapped_column(Text)
    event: Mapped[dict[str, Any] | None]
