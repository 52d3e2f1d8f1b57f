"""Typed SQLAlchemy models of the resource tables; every tenant-owned row carries `workspace_id`.

Ids are UUID strings (String(36)) so the same schema, queries and ClickHouse `workspace_id` values work
on SQLite and Postgres alike. Later issues add their tables here and a migration beside them.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkspaceType(enum.StrEnum):
    ROOT = "Root"
    PARENT = "Parent"
    CHILD = "Child"


class WorkspaceStatus(enum.StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"
    TOMBSTONED = "Tombstoned"


class Role(enum.StrEnum):
    """Member roles, most privileged first (Dittofeed's rank order)."""

    ADMIN = "Admin"
    WORKSPACE_MANAGER = "WorkspaceManager"
    AUTHOR = "Author"
    VIEWER = "Viewer"


def enum_column(kind: type[enum.StrEnum], name: str, default: enum.StrEnum | None = None) -> Any:
    """A column holding a StrEnum's values as VARCHAR + CHECK on every backend, so adding a value
    later is a plain migration with no ALTER TYPE."""
    column_type = Enum(
        kind, name=name, native_enum=False, values_callable=lambda k: [m.value for m in k], length=32
    )
    return mapped_column(column_type, default=default)


class Workspace(Timestamped, Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("parent_workspace_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[WorkspaceType] = enum_column(WorkspaceType, "workspace_type", WorkspaceType.ROOT)
    status: Mapped[WorkspaceStatus] = enum_column(WorkspaceStatus, "workspace_status", WorkspaceStatus.ACTIVE)
    external_id: Mapped[str | None] = mapped_column(Text)
    parent_workspace_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True
    )
    domain: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[Workspace | None] = relationship(remote_side=[id])


# Root names are globally unique and child names unique per parent (Dittofeed's NULLS NOT DISTINCT),
# written as an expression index that SQLite and Postgres both understand.
Index(
    "uq_workspaces_parent_name",
    func.coalesce(Workspace.parent_workspace_id, ""),
    Workspace.name,
    unique=True,
)


class Secret(Timestamped, Base):
    """A named credential or provider configuration of one workspace."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)
    config_value: Mapped[dict[str, Any] | None] = mapped_column()


class WriteKey(Timestamped, Base):
    """Marks a secret as a public write key; validation requires this row, unlike upstream."""

    __tablename__ = "write_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    secret_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("secrets.id", ondelete="CASCADE"), unique=True
    )

    secret: Mapped[Secret] = relationship()


class AdminApiKey(Timestamped, Base):
    """An admin API key, kept only as its SHA-256; the plaintext is shown once at creation."""

    __tablename__ = "admin_api_keys"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)


class WorkspaceMember(Timestamped, Base):
    __tablename__ = "workspace_members"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    image: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    nickname: Mapped[str | None] = mapped_column(Text)
    last_workspace_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="SET NULL")
    )


class WorkspaceMemberRole(Timestamped, Base):
    __tablename__ = "workspace_member_roles"

    workspace_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_member_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspace_members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = enum_column(Role, "role", Role.VIEWER)


class WorkspaceMemberAccount(Timestamped, Base):
    """Links a member to an identity at an OpenID provider (`sub` of `provider`)."""

    __tablename__ = "workspace_member_accounts"
    __table_args__ = (UniqueConstraint("provider", "provider_account_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_member_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workspace_members.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(Text)
    provider_account_id: Mapped[str] = mapped_column(Text)
