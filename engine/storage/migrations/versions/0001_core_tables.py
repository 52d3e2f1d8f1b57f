"""Core tables: workspaces, secrets, write keys, admin API keys, members, roles, accounts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=f"fk_{table}_workspace_id", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", _enum("workspace_type", "Root", "Parent", "Child"), nullable=False),
        sa.Column("status", _enum("workspace_status", "Active", "Paused", "Tombstoned"), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("parent_workspace_id", sa.String(36), nullable=True),
        sa.Column("domain", sa.Text(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["parent_workspace_id"],
            ["workspaces.id"],
            name="fk_workspaces_parent_workspace_id",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint(
            "parent_workspace_id", "external_id", name="uq_workspaces_parent_workspace_id_external_id"
        ),
    )
    op.create_index("ix_workspaces_parent_workspace_id", "workspaces", ["parent_workspace_id"])
    op.create_index(
        "uq_workspaces_parent_name",
        "workspaces",
        [sa.text("coalesce(parent_workspace_id, '')"), "name"],
        unique=True,
    )

    op.create_table(
        "secrets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("config_value", sa.JSON(), nullable=True),
        *_timestamps(),
        _workspace_fk("secrets"),
        sa.PrimaryKeyConstraint("id", name="pk_secrets"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_secrets_workspace_id_name"),
    )

    op.create_table(
        "write_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("secret_id", sa.String(36), nullable=False),
        *_timestamps(),
        _workspace_fk("write_keys"),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name="fk_write_keys_secret_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_write_keys"),
        sa.UniqueConstraint("secret_id", name="uq_write_keys_secret_id"),
    )
    op.create_index("ix_write_keys_workspace_id", "write_keys", ["workspace_id"])

    op.create_table(
        "admin_api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        *_timestamps(),
        _workspace_fk("admin_api_keys"),
        sa.PrimaryKeyConstraint("id", name="pk_admin_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_admin_api_keys_key_hash"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_admin_api_keys_workspace_id_name"),
    )

    op.create_table(
        "workspace_members",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("nickname", sa.Text(), nullable=True),
        sa.Column("last_workspace_id", sa.String(36), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["last_workspace_id"],
            ["workspaces.id"],
            name="fk_workspace_members_last_workspace_id",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workspace_members"),
        sa.UniqueConstraint("email", name="uq_workspace_members_email"),
    )

    op.create_table(
        "workspace_member_roles",
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("workspace_member_id", sa.String(36), nullable=False),
        sa.Column("role", _enum("role", "Admin", "WorkspaceManager", "Author", "Viewer"), nullable=False),
        *_timestamps(),
        _workspace_fk("workspace_member_roles"),
        sa.ForeignKeyConstraint(
            ["workspace_member_id"],
            ["workspace_members.id"],
            name="fk_workspace_member_roles_workspace_member_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "workspace_member_id", name="pk_workspace_member_roles"),
    )
    op.create_index(
        "ix_workspace_member_roles_workspace_member_id", "workspace_member_roles", ["workspace_member_id"]
    )

    op.create_table(
        "workspace_member_accounts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_member_id", sa.String(36), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("provider_account_id", sa.Text(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["workspace_member_id"],
            ["workspace_members.id"],
            name="fk_workspace_member_accounts_workspace_member_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workspace_member_accounts"),
        sa.UniqueConstraint(
            "provider",
            "provider_account_id",
            name="uq_workspace_member_accounts_provider_provider_account_id",
        ),
    )
    op.create_index(
        "ix_workspace_member_accounts_workspace_member_id",
        "workspace_member_accounts",
        ["workspace_member_id"],
    )


def downgrade() -> None:
    for table in (
        "workspace_member_accounts",
        "workspace_member_roles",
        "workspace_members",
        "admin_api_keys",
        "write_keys",
        "secrets",
        "workspaces",
    ):
        op.drop_table(table)
