"""The compute lease table: which worker may compute a workspace's segments and user properties now.

One row per workspace that was ever computed under a lease; engine.compute.leases claims, renews and
releases it. The row stays after release (expired at the release moment) so `owner` and `updated_at`
show who computed the workspace last.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, utcnow


class ComputeLease(Base):
    __tablename__ = "compute_leases"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(Text)
    # The holder must renew before this instant; after it any worker may take the workspace over.
    expires_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
