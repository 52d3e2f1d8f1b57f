"""The SQL copies of segment and user-property assignments.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _create(table: str, property_column: str, property_table: str, value: sa.Column[object]) -> None:
    op.create_table(
        table,
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column(property_column, sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        value,
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            [property_column],
            [f"{property_table}.id"],
            name=op.f(f"fk_{table}_{property_column}"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", property_column, "user_id", name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_workspace_id_user_id"), table, ["workspace_id", "user_id"])


def upgrade() -> None:
    _create(
        "segment_assignments", "segment_id", "segments", sa.Column("in_segment", sa.Boolean(), nullable=False)
    )
    _create(
        "user_property_assignments",
        "user_property_id",
        "user_properties",
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_property_assignments")
    op.drop_table("segment_assignments")
