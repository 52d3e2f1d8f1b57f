"""Compute leases: at most one worker computes a workspace's segments and user properties at a time.

Two computations of one workspace at once waste work and signal changes twice: a period adds its
events' partial aggregates to `computed_property_state_v4` and inserts the assignments that changed
since the last one, so two workers that read the same last period and both run the next one store the
period's states twice (which no reader of them can tell, but which they keep) and both insert the
assignments that changed, each a change signal for the listeners.

A worker claims the workspace's `compute_leases` row (owner + expiry) before computing it, renews the
claim between targets, and releases it when done. The claim is one `INSERT … ON CONFLICT DO UPDATE …
WHERE` statement, atomic on SQLite and Postgres alike: it takes a free row, an expired one, or its own.
A worker that dies holding the lease is taken over once the lease expires, so the lease must outlast
the longest single target's computation (renewal happens only between targets).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.storage.compute_models import ComputeLease

# Long enough for a full recompute of one large segment; renewed before each further target.
COMPUTE_LEASE = timedelta(minutes=10)


def claim_compute(
    session: Session, workspace_id: str, owner: str, *, now: datetime, lease: timedelta = COMPUTE_LEASE
) -> bool:
    """Lease the workspace's computation to `owner` until `now + lease` when nobody else holds it
    (no row, an expired or released one, or `owner`'s own, which renews it). The caller commits."""
    table = ComputeLease.__table__
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    insert = dialect.insert(table).values(
        workspace_id=workspace_id, owner=owner, expires_at=now + lease, updated_at=now
    )
    statement = insert.on_conflict_do_update(
        index_elements=["workspace_id"],
        set_={
            "owner": insert.excluded.owner,
            "expires_at": insert.excluded.expires_at,
            "updated_at": insert.excluded.updated_at,
        },
        # `<=`: a lease released at `now` (see release_compute) is free at that same instant.
        where=(table.c.expires_at <= now) | (table.c.owner == owner),
    ).returning(table.c.workspace_id)
    # A row comes back when it was inserted or updated; none when a live lease of another owner stood.
    return session.execute(statement).first() is not None


def release_compute(session: Session, workspace_id: str, owner: str, *, now: datetime) -> None:
    """End `owner`'s lease at `now` (nothing when another worker took it over). The caller commits."""
    session.execute(
        update(ComputeLease)
        .where(ComputeLease.workspace_id == workspace_id, ComputeLease.owner == owner)
        .values(expires_at=now, updated_at=now),
        execution_options={"synchronize_session": False},
    )


def read_lease(session: Session, workspace_id: str) -> ComputeLease | None:
    """The workspace's lease row, live or not."""
    return session.get(ComputeLease, workspace_id, populate_existing=True)
