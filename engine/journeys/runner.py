"""The journey worker task (DESIGN §3): every period it starts the runs segment entry owes, then claims
the runs that are due (`engine.journeys.claims`) and walks each one node by node until it must wait or
exits (Dittofeed §7.3). Runs of journeys that are not Running (Paused) are not claimed: they hold where
they are until the journey runs again.

Nothing a run does twice after a crash has an effect twice: messages go through the send ledger
(`engine.journeys.messages`), and the `DFJourneyNodeProcessed` events have derived messageIds and are
written before the commit that moves the run past their node. Work is committed at every send and
whenever a batch has no run left to move, so a crash repeats at most the side-effect-free nodes since.
"""

from __future__ import annotations

import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.events import EventRow
from engine.journeys.claims import JOURNEY_LEASE, claim_runs
from engine.journeys.definition import EXIT, ExitNode, JourneyDefinition, MessageNode
from engine.journeys.entry import enter_segment_members, running_journeys
from engine.journeys.messages import JourneySends, Visit
from engine.journeys.nodes import LONG_RUNNING, arrival, departure
from engine.journeys.records import node_processed_row
from engine.messaging.ledger import RetryPolicy, WriteEvents
from engine.messaging.recipients import load_user_properties
from engine.messaging.send import Recipient, SendServices
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.journey_models import Journey, JourneyRun, JourneyStatus, RunState
from engine.storage.models import Workspace, WorkspaceStatus, utcnow

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
# Membership changes reach SQL once per compute period, so entry is scanned no more often than this.
ENTRY_INTERVAL = timedelta(seconds=10)


class JourneyRunner:
    """The worker task: `run_once()` does one period at `clock()`; `run_due(now)` at a given time."""

    name = "journeys"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        services: SendServices,
        write_events: WriteEvents,
        *,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        batch_size: int = BATCH_SIZE,
        lease: timedelta = JOURNEY_LEASE,
        entry_interval: timedelta = ENTRY_INTERVAL,
        budget_seconds: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.services = services
        self.write_events = write_events
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 (cohort draws, not secrets)
        self.batch_size = batch_size
        self.lease = lease
        self.entry_interval = entry_interval
        # One call claims no new batch after this long, so the worker stays responsive to stop requests.
        self.budget_seconds = budget_seconds
        self._entered_at: datetime | None = None

    def run_once(self) -> None:
        self.run_due(self.clock())

    def run_due(self, now: datetime) -> int:
        """Start the runs segment entry owes, then walk the runs due at `now` (for up to the time budget);
        returns how many runs were walked."""
        self.enter(now)
        walked: set[str] = set()
        deadline = time.monotonic() + self.budget_seconds
        while time.monotonic() < deadline:
            with self.sessions() as session:
                journeys = {
                    journey.id: definition for journey, definition in running_journeys(session, active=False)
                }
                runs = claim_runs(
                    session, journeys, now=now, owner=self.owner, limit=self.batch_size, lease=self.lease
                )
                session.commit()
                ids = {run.id for run in runs}
                if not runs or ids <= walked:  # only runs this call already walked: a bug, not work
                    break
                walked |= ids
                _Batch(self, session, journeys, now).walk(runs)
            if len(runs) < self.batch_size:
                break
        return len(walked)

    def enter(self, now: datetime) -> int:
        """Start the runs segment entry owes, unless that was done less than `entry_interval` ago."""
        if self._entered_at is not None and self._entered_at <= now < self._entered_at + self.entry_interval:
            return 0
        with self.sessions() as session:
            started = enter_segment_members(session, now)
            session.commit()
        self._entered_at = now
        if started:
            logger.info("%d journey run(s) started", started)
        return started


@dataclass
class _Facts:
    """What nodes ask about one run's user (nodes.RunFacts), answered from the pass's caches."""

    batch: _Batch
    run: JourneyRun
    now: datetime
    rng: random.Random

    def in_segment(self, segment_id: str) -> bool:
        return (segment_id, self.run.user_id) in self.batch.memberships(self.run.workspace_id)

    def user_properties(self) -> dict[str, Any]:
        return self.batch.properties(self.run.workspace_id).get(self.run.user_id) or {"id": self.run.user_id}


class _Batch:
    """One claimed batch, walked at one `now`: membership, user properties and workspace statuses are
    read once per workspace for the whole batch."""

    def __init__(
        self, runner: JourneyRunner, session: Session, journeys: dict[str, JourneyDefinition], now: datetime
    ) -> None:
        self.runner = runner
        self.session = session
        self.journeys = journeys
        self.now = now
        self.events: list[EventRow] = []
        self.steps: dict[str, int] = {}
        self._user_ids: dict[str, list[str]] = {}
        self._memberships: dict[str, set[tuple[str, str]]] = {}
        self._properties: dict[str, dict[str, dict[str, Any]]] = {}
        self._active: dict[str, bool] = {}

    def walk(self, runs: Sequence[JourneyRun]) -> None:
        for run in runs:
            self._user_ids.setdefault(run.workspace_id, []).append(run.user_id)
        moving = list(runs)
        while moving:
            at_message = [run for run in moving if self._walk(run)]
            self.commit()
            if not at_message:
                break
            self._send(at_message)
            self.commit()
            # Runs the send moved on (still leased to us) walk on; those told to wait were released.
            moving = [run for run in at_message if run.lease_owner == self.runner.owner]

    # -- the walk ------------------------------------------------------------------------------------

    def _walk(self, run: JourneyRun) -> bool:
        """Move the run through its nodes until it waits, exits, or stands at a message node (True)."""
        definition = self.journeys[run.journey_id]
        facts = _Facts(self, run, self.now, self.runner.rng)
        while True:
            node = definition.node(run.node_id)
            if isinstance(node, ExitNode):
                self._record(run, definition, node)
                self._exit(run)
                return False
            steps = self.steps[run.id] = self.steps.get(run.id, 0) + 1
            if steps > len(definition.nodes) + 2:
                logger.warning("journey run %s of %s goes round in circles; it exits", run.id, run.journey_id)
                self._move(run, definition, EXIT, facts)
                continue
            if isinstance(node, MessageNode):
                return True
            next_id = departure(node, run.due_at, facts)
            if next_id is None:
                self._release(run)
                return False
            self._leave(run, definition, node, next_id, facts)

    def _leave(
        self, run: JourneyRun, definition: JourneyDefinition, node: Any, next_id: str, facts: _Facts
    ) -> None:
        self._record(run, definition, node)
        if isinstance(node, LONG_RUNNING) and not self._workspace_active(run.workspace_id):
            next_id = EXIT
        self._move(run, definition, next_id, facts)

    def _move(self, run: JourneyRun, definition: JourneyDefinition, next_id: str, facts: _Facts) -> None:
        run.node_id = next_id
        run.attempts = 0
        run.state, run.due_at = arrival(definition.node(next_id), facts)

    def _exit(self, run: JourneyRun) -> None:
        run.state = RunState.EXITED
        run.live_key = None
        run.exited_at = self.now
        run.due_at = None
        self._release(run)

    def _release(self, run: JourneyRun) -> None:
        run.lease_owner = None
        run.lease_expires_at = None

    def _record(self, run: JourneyRun, definition: JourneyDefinition, node: Any) -> None:
        self.events.append(node_processed_row(run, definition, node, self.now))

    # -- messages ------------------------------------------------------------------------------------

    def _send(self, runs: Sequence[JourneyRun]) -> None:
        statuses = dict(
            self.session.execute(
                select(Journey.id, Journey.status).where(Journey.id.in_({run.journey_id for run in runs}))
            ).all()
        )
        active = {ws: self._workspace_active(ws, fresh=True) for ws in {run.workspace_id for run in runs}}
        visits = []
        for run in runs:
            node = self.journeys[run.journey_id].node(run.node_id)
            assert isinstance(node, MessageNode)
            reason = None
            if statuses.get(run.journey_id) != JourneyStatus.RUNNING:
                reason = "the journey is no longer running"
            elif not active[run.workspace_id]:
                reason = "the workspace is no longer active"
            visits.append(Visit(run, node, reason))
        sends = JourneySends(
            self.session,
            self.runner.services,
            self.runner.write_events,
            now=self.now,
            owner=self.runner.owner,
            policy=self.runner.policy,
            lease=self.runner.lease,
            clock=self.runner.clock,
            commit=self.commit,
            record=self.events.append,
            recipient=self._recipient,
        )
        outcomes = sends.visit(visits)
        for visit in visits:
            run, outcome = visit.run, outcomes[visit.run.id]
            definition = self.journeys[run.journey_id]
            facts = _Facts(self, run, self.now, self.runner.rng)
            if outcome.next_id is not None:
                self._leave(run, definition, visit.node, outcome.next_id, facts)
            else:
                run.state, run.due_at = RunState.ACTIVE, outcome.due_at
                self._release(run)

    def _recipient(self, run: JourneyRun) -> Recipient:
        return Recipient(run.user_id, _Facts(self, run, self.now, self.runner.rng).user_properties())

    # -- caches and commits --------------------------------------------------------------------------

    def commit(self) -> None:
        """Write the queued events, then commit: a run never moves past a node whose event is unwritten."""
        if self.events:
            self.runner.write_events(self.events)
            self.events = []
        self.session.commit()

    def memberships(self, workspace_id: str) -> set[tuple[str, str]]:
        if workspace_id not in self._memberships:
            self._memberships[workspace_id] = {
                (segment_id, user_id)
                for segment_id, user_id in self.session.execute(
                    select(SegmentAssignment.segment_id, SegmentAssignment.user_id).where(
                        SegmentAssignment.workspace_id == workspace_id,
                        SegmentAssignment.user_id.in_(sorted(set(self._user_ids[workspace_id]))),
                        SegmentAssignment.in_segment.is_(True),
                    )
                )
            }
        return self._memberships[workspace_id]

    def properties(self, workspace_id: str) -> dict[str, dict[str, Any]]:
        if workspace_id not in self._properties:
            user_ids = sorted(set(self._user_ids[workspace_id]))
            self._properties[workspace_id] = load_user_properties(self.session, workspace_id, user_ids)
        return self._properties[workspace_id]

    def _workspace_active(self, workspace_id: str, *, fresh: bool = False) -> bool:
        if fresh or workspace_id not in self._active:
            status = self.session.scalar(select(Workspace.status).where(Workspace.id == workspace_id))
            self._active[workspace_id] = status == WorkspaceStatus.ACTIVE
        return self._active[workspace_id]
