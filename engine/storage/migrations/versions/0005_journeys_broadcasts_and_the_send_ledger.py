"""Journeys, their runs, broadcasts and the send ledger.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "journeys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "NotStarted",
                "Running",
                "Paused",
                "Broadcast",
                name="journey_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("draft", sa.JSON(), nullable=True),
        sa.Column("can_run_multiple", sa.Boolean(), nullable=False),
        sa.Column(
            "resource_type",
            sa.Enum("Declarative", "Internal", name="resource_type", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("status_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_journeys_workspace_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_journeys_workspace_id_name")),
    )
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journeys_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "message_sends",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "Pending",
                "Sending",
                "Sent",
                "Failed",
                "Skipped",
                "Cancelled",
                name="send_state",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result_event", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_message_sends_workspace_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_sends")),
    )
    with op.batch_alter_table("message_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_sends_recorded_at"), ["recorded_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_message_sends_source_id_state_due_at"),
            ["source_id", "state", "due_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_message_sends_source_id_user_id"), ["source_id", "user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_message_sends_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "journey_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("journey_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("instance_key", sa.Text(), nullable=False),
        sa.Column("live_key", sa.Text(), nullable=True),
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("Active", "Waiting", "Exited", name="run_state", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("triggering_message_id", sa.Text(), nullable=True),
        sa.Column("event", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_journey_runs_journey_id"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_journey_runs_workspace_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_runs")),
        sa.UniqueConstraint(
            "journey_id", "user_id", "live_key", name=op.f("uq_journey_runs_journey_id_user_id_live_key")
        ),
    )
    with op.batch_alter_table("journey_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journey_runs_journey_id_user_id"), ["journey_id", "user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_journey_runs_state_due_at"), ["state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_journey_runs_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "broadcasts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=2), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=True),
        sa.Column("message_template_id", sa.String(length=36), nullable=True),
        sa.Column("subscription_group_id", sa.String(length=36), nullable=True),
        sa.Column("journey_id", sa.String(length=36), nullable=True),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "Draft",
                "Scheduled",
                "Running",
                "Paused",
                "Completed",
                "Cancelled",
                "Failed",
                "NotStarted",
                "InProgress",
                "Triggered",
                name="broadcast_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("scheduled_at", sa.Text(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients_loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_batch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_broadcasts_journey_id"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["message_template_id"],
            ["message_templates.id"],
            name=op.f("fk_broadcasts_message_template_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_broadcasts_segment_id"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_group_id"],
            ["subscription_groups.id"],
            name=op.f("fk_broadcasts_subscription_group_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_broadcasts_workspace_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_broadcasts_workspace_id_name")),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcasts_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcasts_workspace_id"))

    op.drop_table("broadcasts")
    with op.batch_alter_table("journey_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journey_runs_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_journey_runs_state_due_at"))
        batch_op.drop_index(batch_op.f("ix_journey_runs_journey_id_user_id"))

    op.drop_table("journey_runs")
    with op.batch_alter_table("message_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_sends_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_message_sends_source_id_user_id"))
        batch_op.drop_index(batch_op.f("ix_message_sends_source_id_state_due_at"))
        batch_op.drop_index(batch_op.f("ix_message_sends_recorded_at"))

    op.drop_table("message_sends")
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journeys_workspace_id"))

    op.drop_table("journeys")
