"""authored resources

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("draft", sa.JSON(), nullable=True),
        sa.Column(
            "resource_type",
            sa.Enum("Declarative", "Internal", name="resource_type", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_message_templates_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_message_templates_workspace_id_name")),
    )
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_templates_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "subscription_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "type",
            sa.Enum("OptIn", "OptOut", name="subscription_group_type", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum(
                "Email", "MobilePush", "Sms", "Webhook", name="channel_type", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_subscription_groups_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_groups")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_subscription_groups_workspace_id_name")),
    )
    with op.batch_alter_table("subscription_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_groups_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "user_properties",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column(
            "resource_type",
            sa.Enum("Declarative", "Internal", name="resource_type", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "NotStarted",
                "Running",
                "Paused",
                name="computed_property_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("example_value", sa.Text(), nullable=True),
        sa.Column("definition_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_user_properties_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_properties")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_user_properties_workspace_id_name")),
    )
    with op.batch_alter_table("user_properties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_properties_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "email_providers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("secret_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_email_providers_secret_id"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_email_providers_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_providers")),
        sa.UniqueConstraint("workspace_id", "type", name=op.f("uq_email_providers_workspace_id_type")),
    )
    with op.batch_alter_table("email_providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_providers_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column(
            "resource_type",
            sa.Enum("Declarative", "Internal", name="resource_type", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "NotStarted",
                "Running",
                "Paused",
                name="computed_property_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subscription_group_id", sa.String(length=36), nullable=True),
        sa.Column("definition_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_group_id"],
            ["subscription_groups.id"],
            name=op.f("fk_segments_subscription_group_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_segments_workspace_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_segments_workspace_id_name")),
    )
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segments_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "sms_providers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("secret_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_sms_providers_secret_id"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_sms_providers_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_providers")),
        sa.UniqueConstraint("workspace_id", "type", name=op.f("uq_sms_providers_workspace_id_type")),
    )
    with op.batch_alter_table("sms_providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_providers_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "default_email_providers",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("email_provider_id", sa.String(length=36), nullable=False),
        sa.Column("from_address", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_provider_id"],
            ["email_providers.id"],
            name=op.f("fk_default_email_providers_email_provider_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_default_email_providers_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_default_email_providers")),
    )
    op.create_table(
        "default_sms_providers",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("sms_provider_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sms_provider_id"],
            ["sms_providers.id"],
            name=op.f("fk_default_sms_providers_sms_provider_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_default_sms_providers_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_default_sms_providers")),
    )


def downgrade() -> None:
    op.drop_table("default_sms_providers")
    op.drop_table("default_email_providers")
    with op.batch_alter_table("sms_providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_providers_workspace_id"))

    op.drop_table("sms_providers")
    with op.batch_alter_table("segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segments_workspace_id"))

    op.drop_table("segments")
    with op.batch_alter_table("email_providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_providers_workspace_id"))

    op.drop_table("email_providers")
    with op.batch_alter_table("user_properties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_properties_workspace_id"))

    op.drop_table("user_properties")
    with op.batch_alter_table("subscription_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_groups_workspace_id"))

    op.drop_table("subscription_groups")
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_templates_workspace_id"))

    op.drop_table("message_templates")
