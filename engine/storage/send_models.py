"""The send ledger: one row per message that a broadcast or a journey step owes one user.

The row exists before the provider is called and its messageId is derived from what owes it, so a
retry, or a worker taking over a dead one's work, finds it and sends under the same messageId (the
provider's idempotency key, where it has one) instead of sending a second message.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, enum_column, utcnow


class SendState(enum.StrEnum):
    PENDING = "Pending"  # due at `due_at`
    SENDING = "Sending"  # claimed by `lease_owner`; in doubt once the lease expired
    SENT = "Sent"
    FAILED = "Failed"  # a permanent failure, or transient ones until the attempts ran out
    SKIPPED = "Skipped"  # unsubscribed, no identifier
    CANCELLED = "Cancelled"  # the broadcast was cancelled before the send


FINAL_STATES = (SendState.SENT, SendState.FAILED, SendState.SKIPPED, SendState.CANCELLED)


class MessageSend(Base):
    __tablename__ = "message_sends"
    __table_args__ = (
        Index(None, "source_id", "state", "due_at"),
        Index(None, "source_id", "user_id"),
        Index(None, "recorded_at"),
    )

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    # The broadcast id, or the journey run id.
    source_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(Text)
    state: Mapped[SendState] = enum_column(SendState, "send_state", SendState.PENDING)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[datetime | None]
    # The result, kept until its internal event is in ClickHouse (`recorded_at`): the event's name and
    # properties (the send's tags and the result variant).
    result_event: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    recorded_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
