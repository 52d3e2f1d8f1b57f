"""Tables of the multi-tenant gateway: component configurations, embed settings, themes and the audit log.

Embed settings live in their own row per workspace (a child without one inherits its parent's), so
revoking every session of a workspace is one UPDATE of `sessions_not_before`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.storage.models import Base, Timestamped, new_id, utcnow


class ComponentConfiguration(Timestamped, Base):
    """A stored shape for one embedded component; by convention `name` is the component type."""

    __tablename__ = "component_configurations"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column()


class EmbedSettings(Timestamped, Base):
    """Who may frame a workspace's embedded screens, and since when its sessions are valid."""

    __tablename__ = "embed_settings"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    # Origins (scheme://host[:port]) allowed to frame the screens; None inherits the parent's.
    allowed_origins: Mapped[list[str] | None] = mapped_column(JSON)
    # Tokens issued before this instant are refused (per-workspace revocation).
    sessions_not_before: Mapped[datetime | None] = mapped_column()


class WorkspaceTheme(Timestamped, Base):
    """A workspace's own theme values (engine.themes validates them); a child inherits the rest."""

    __tablename__ = "workspace_themes"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    values: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEntry(Base):
    """One change made through the API, by whom, from where, with the row before and after."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index(None, "workspace_id", "seq"),
        Index(None, "parent_workspace_id", "seq"),
    )

    # A monotonically increasing key gives a stable cursor (timestamps collide).
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), default=new_id, unique=True)
    workspace_id: Mapped[str] = mapped_column(String(36))
    # Denormalised so a parent reads its children's entries with one indexed query.
    parent_workspace_id: Mapped[str | None] = mapped_column(String(36))
    actor_type: Mapped[str] = mapped_column(String(32))  # Member | AdminApiKey | EmbedOccupant | Anonymous
    actor_id: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    resource_type: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column()
    after: Mapped[dict[str, Any] | None] = mapped_column()
    ip: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
