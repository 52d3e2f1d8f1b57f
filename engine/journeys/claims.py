"""Claiming due journey runs for one worker (DESIGN §3): `SELECT … FOR UPDATE SKIP LOCKED`, then a lease
(`lease_owner`, `lease_expires_at`) the caller commits before any work, so workers share the runs and a
killed worker's runs are taken over once its lease expires.

A run is due when it is Active and its `due_at` passed, or Waiting at a wait-for node and either its
timeout passed or one of the node's segments is now true for the user (the SQL copy of membership).
Only runs of the journeys handed in (the Running ones) are claimed: a Paused journey's runs hold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from engine.journeys.definition import JourneyDefinition, WaitForNode
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.journey_models import JourneyRun, RunState

logger = logging.getLogger(__name__)

# A claimed batch must be walked within this long, or another worker takes its runs over.
JOURNEY_LEASE = timedelta(minutes=5)


def claim_runs(
    session: Session,
    journeys: Mapping[str, JourneyDefinition],
    *,
    now: datetime,
    owner: str,
    limit: int,
    lease: timedelta = JOURNEY_LEASE,
) -> list[JourneyRun]:
    """Lease up to `limit` due runs of `journeys` (the Running ones) to `owner` until `now + lease`;
    the caller commits."""
    if not journeys:
        return []
    free = or_(JourneyRun.lease_expires_at.is_(None), JourneyRun.lease_expires_at < now)
    conditions: list[ColumnElement[bool]] = [
        (JourneyRun.state.in_([RunState.ACTIVE, RunState.WAITING])) & (JourneyRun.due_at <= now)
    ]
    for journey_id, definition in journeys.items():
        for node in definition.nodes:
            if isinstance(node, WaitForNode) and node.segmentChildren:
                conditions.append(_woken(journey_id, node, now))
    claimed: dict[str, JourneyRun] = {}
    for condition in conditions:
        if len(claimed) >= limit:
            break
        statement = (
            select(JourneyRun)
            .where(JourneyRun.journey_id.in_(list(journeys)), free, condition)
            .order_by(JourneyRun.due_at, JourneyRun.id)
            .limit(limit - len(claimed))
            .with_for_update(skip_locked=True, of=JourneyRun)
            .execution_options(populate_existing=True)
        )
        for run in session.scalars(statement):
            claimed.setdefault(run.id, run)
    for run in claimed.values():
        if run.lease_owner is not None:
            logger.warning(
                "journey run %s of %s was left by %s; taking it over", run.id, run.journey_id, run.lease_owner
            )
        run.lease_owner = owner
        run.lease_expires_at = now + lease
    return list(claimed.values())


def _woken(journey_id: str, node: WaitForNode, now: datetime) -> ColumnElement[bool]:
    """Runs waiting at `node`, not yet timed out, whose user is now in one of its segments."""
    member = (
        select(SegmentAssignment.user_id)
        .where(
            SegmentAssignment.workspace_id == JourneyRun.workspace_id,
            SegmentAssignment.user_id == JourneyRun.user_id,
            SegmentAssignment.segment_id.in_([child.segmentId for child in node.segmentChildren]),
            SegmentAssignment.in_segment.is_(True),
        )
        .exists()
    )
    return (
        (JourneyRun.journey_id == journey_id)
        & (JourneyRun.node_id == node.id)
        & (JourneyRun.state == RunState.WAITING)
        & (JourneyRun.due_at > now)
        & member
    )
