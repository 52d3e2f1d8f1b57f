"""Alembic environment: runs on the connection handed over by `engine.storage.migrate`."""

from __future__ import annotations

from alembic import context

from engine.storage import (  # noqa: F401  (register their tables)
    assignment_models,
    broadcast_models,
    compute_models,
    gateway_models,
    journey_models,
    resource_models,
    send_models,
)
from engine.storage.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
