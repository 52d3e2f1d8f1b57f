"""The SQL copy of computed assignments (Dittofeed's SegmentAssignment and UserPropertyAssignment):
the current membership and property values per user, for row-wise lookups that ClickHouse is slow at.

ClickHouse stays the source of truth; `engine.compute.process` keeps these rows in step with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base


class SegmentAssignment(Base):
    __tablename__ = "segment_assignments"
    __table_args__ = (Index(None, "workspace_id", "user_id"),)

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    in_segment: Mapped[bool]
    # When ClickHouse recorded this value: the membership change's time.
    assigned_at: Mapped[datetime]


class UserPropertyAssignment(Base):
    __tablename__ = "user_property_assignments"
    __table_args__ = (Index(None, "workspace_id", "user_id"),)

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_property_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("user_properties.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    # The value as JSON text, as in ClickHouse.
    value: Mapped[str] = mapped_column(Text)
    assigned_at: Mapped[datetime]
