"""The compute loop: every period, each eligible workspace's Running segments and user properties
are brought up to date (Dittofeed §9.3). Runs in `feedgate worker`, or in-process when embedded.

A workspace is eligible when it is Active and not a Parent. A definition that cannot be compiled
or a store error on one property is logged and skipped; the others still run.

Several `feedgate worker` processes run this loop against one store. Given an `owner`, a process
computes a workspace only under its compute lease (engine.compute.leases), so two never compute one
workspace at once; without one (a single process) the per-process lock alone serialises computations.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.compute.compile import compile_segment, compile_user_property
from engine.compute.leases import COMPUTE_LEASE, claim_compute, release_compute
from engine.compute.process import STEP as PROCESS_STEP
from engine.compute.process import AssignmentChange, AssignmentListener, copy_changes, read_changes
from engine.compute.run import STEP as COMPUTE_STEP
from engine.compute.run import LastPeriods, Target, add_states, compute_period, record_periods, version_of
from engine.delivery_facts import fold_pending_statuses
from engine.storage.event_store import EventStore
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType, utcnow
from engine.storage.resource_models import ComputedPropertyStatus, Segment, UserProperty

logger = logging.getLogger(__name__)
# A recompute running longer than this says how far it got, and again every as long.
PROGRESS_EVERY_SECONDS = 5.0
# Segments and user properties computed at once in one workspace.
COMPUTE_THREADS = 2


@dataclass(frozen=True)
class ComputeSummary:
    properties: int = 0
    changed: int = 0
    failed: int = 0
    seconds: float = 0.0
    # Time spent copying changed assignments to SQL and telling listeners, most of it alongside the
    # ClickHouse work of the next targets (so not a part of `seconds` to subtract).
    copy_seconds: float = 0.0


def load_targets(
    session: Session, workspace_id: str, only: Collection[str] | None = None
) -> Iterator[Target]:
    """The workspace's Running segments and user properties (or exactly those in `only`, whatever
    their status: a manual segment is computed when it is updated), compiled; bad ones are skipped."""
    segments = select(Segment).where(Segment.workspace_id == workspace_id)
    properties = select(UserProperty).where(UserProperty.workspace_id == workspace_id)
    if only is None:
        segments = segments.where(Segment.status == ComputedPropertyStatus.RUNNING)
        properties = properties.where(UserProperty.status == ComputedPropertyStatus.RUNNING)
    else:
        segments = segments.where(Segment.id.in_(list(only)))
        properties = properties.where(UserProperty.id.in_(list(only)))
    for segment in session.scalars(segments):
        version = version_of(segment.definition_updated_at)
        try:
            compiled = compile_segment(segment.id, segment.name, segment.definition, version)
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("segment %s not computed: %s", segment.id, error)
            continue
        yield Target(workspace_id, "segment", segment.id, version, compiled)
    for prop in session.scalars(properties):
        version = version_of(prop.definition_updated_at)
        try:
            compiled = compile_user_property(prop.id, prop.definition, version)
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("user property %s not computed: %s", prop.id, error)
            continue
        yield Target(workspace_id, "user_property", prop.id, version, compiled)


def compute_workspace(
    sessions: sessionmaker[Session],
    store: EventStore,
    workspace_id: str,
    *,
    now: datetime,
    only: Collection[str] | None = None,
    listeners: Sequence[AssignmentListener] = (),
    keep_going: Callable[[], bool] | None = None,
) -> ComputeSummary:
    """Bring the workspace's Running segments and user properties (or those in `only`) up to `now`,
    copy what changed to SQL and tell `listeners`. `keep_going` is asked before each target after the
    first (it renews the compute lease); False stops the computation there."""
    started = last_report = time.perf_counter()
    with sessions() as session:
        targets = list(load_targets(session, workspace_id, only))
    # Read once for every target: this process holds the workspace (its lease or lock) meanwhile.
    periods = LastPeriods.read(store, workspace_id, [target.property_id for target in targets])
    # Embedded, the engine shares this machine's cores with the other targets computing and the copier:
    # statements each using every core only contend (measured: full recompute 6% faster on 2 cores).
    threads = max(1, (os.cpu_count() or 1) // COMPUTE_THREADS) if store.embedded else None
    states_added = _add_states(store, targets, periods, now, threads)
    changed = failed = attempted = 0
    copies: list[tuple[Target, Future[float | None]]] = []
    # The periods that ran, recorded together once every copy is done (see engine.compute.run).
    ran: list[tuple[Target, str]] = []
    running: deque[tuple[Target, Future[list[AssignmentChange]]]] = deque()
    lease_lost = False
    # COMPUTE_THREADS targets compute at once (their statements run outside the interpreter lock, and
    # one statement seldom keeps every core busy). One copier thread copies each computed target's
    # changes to SQL meanwhile, in target order, so the listeners hear of them in that order; at most
    # two targets' changes wait in memory for it. Leaving the `with` waits for every copy.
    with (
        ThreadPoolExecutor(COMPUTE_THREADS, thread_name_prefix="compute") as computers,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute-copy") as copier,
    ):
        pending = iter(targets)
        while True:
            while not lease_lost and len(running) < COMPUTE_THREADS:
                target = next(pending, None)
                if target is None:
                    break
                if attempted and keep_going is not None and not keep_going():
                    logger.warning(
                        "workspace %s: compute lease lost after %d of %d properties; stopping",
                        workspace_id,
                        attempted,
                        len(targets),
                    )
                    lease_lost = True
                    break
                attempted += 1
                running.append(
                    (
                        target,
                        computers.submit(
                            _compute_target,
                            store,
                            target,
                            periods,
                            now,
                            threads,
                            target.property_id in states_added,
                        ),
                    )
                )
            if not running:
                break
            target, computing = running.popleft()
            try:
                changes = computing.result()
            except Exception:
                failed += 1
                logger.exception(
                    "%s %s of workspace %s failed", target.kind, target.property_id, workspace_id
                )
                continue
            changed += len(changes)
            ran.append((target, COMPUTE_STEP))
            if lease_lost:
                continue  # another worker may hold the workspace now: it copies these changes
            if len(copies) >= 2:
                wait([copies[-2][1]])
            copies.append((target, copier.submit(_copy_assignments, sessions, target, changes, listeners)))
            done = attempted - len(running)
            if time.perf_counter() - last_report > PROGRESS_EVERY_SECONDS and done < len(targets):
                last_report = time.perf_counter()
                logger.info(
                    "workspace %s: %d of %d properties computed in %.1f s, %d changed assignments so far",
                    workspace_id,
                    done,
                    len(targets),
                    last_report - started,
                    changed,
                )
    copy_seconds = 0.0
    for target, copy in copies:
        seconds = copy.result()
        if seconds is None:
            failed += 1
        else:
            copy_seconds += seconds
            ran.append((target, PROCESS_STEP))
    try:
        record_periods(store, ran, now)
    except Exception:
        # The next run repeats these periods, which changes nothing already done (engine.compute.run).
        logger.exception("workspace %s: %d computed periods not recorded", workspace_id, len(ran))
        failed = attempted
    return ComputeSummary(attempted, changed, failed, time.perf_counter() - started, copy_seconds)


def _add_states(
    store: EventStore, targets: Sequence[Target], periods: LastPeriods, now: datetime, threads: int | None
) -> set[str]:
    """Add the period's states of every target going on from an earlier period, in one statement per
    period start (`add_states`); the ids of the properties done. A statement that fails is logged and
    its targets add their own states, so that a definition ClickHouse refuses fails alone."""
    continuing: dict[datetime, list[Target]] = {}
    for target in targets:
        since = periods.of(target.property_id, target.version)
        if since is not None:
            continuing.setdefault(since, []).append(target)
    added: set[str] = set()
    for since, group in continuing.items():
        try:
            add_states(store, group, since=since, now=now, threads=threads)
        except Exception:
            logger.warning("states of %d properties not added together", len(group), exc_info=True)
            continue
        added.update(target.property_id for target in group)
    return added


def _compute_target(
    store: EventStore,
    target: Target,
    periods: LastPeriods,
    now: datetime,
    threads: int | None,
    states_added: bool,
) -> list[AssignmentChange]:
    """One period of the target; its changes to copy (all since its last ProcessAssignments period)."""
    since = periods.of(target.property_id, target.version)
    compute_period(store, target, since=since, now=now, threads=threads, states_added=states_added)
    return read_changes(
        store,
        target.workspace_id,
        target.kind,
        target.property_id,
        since=periods.of(target.property_id, step=PROCESS_STEP),
        now=now,
    )


def _copy_assignments(
    sessions: sessionmaker[Session],
    target: Target,
    changes: list[AssignmentChange],
    listeners: Sequence[AssignmentListener],
) -> float | None:
    """Copy the target's changes to SQL and tell the listeners; how long it took, or None when it
    failed (logged)."""
    started = time.perf_counter()
    try:
        with sessions() as session:
            copy_changes(session, target.kind, changes, listeners=listeners)
    except Exception:
        logger.exception(
            "%s %s of workspace %s not copied to SQL", target.kind, target.property_id, target.workspace_id
        )
        return None
    return time.perf_counter() - started


class ComputeProperties:
    """The worker task; `watermark()` says up to when events are surely stored (see EventWriter).

    With an `owner` (one per process, see gateway.background.worker_owner) each workspace is computed
    under its compute lease, held `lease` long by `clock()` and renewed between targets: the loop skips
    a workspace another worker holds, an explicit `compute` waits for it."""

    name = "compute-properties"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: EventStore,
        watermark: Callable[[], datetime],
        listeners: Sequence[AssignmentListener] = (),
        *,
        owner: str | None = None,
        lease: timedelta = COMPUTE_LEASE,
        clock: Callable[[], datetime] = utcnow,
        wait_seconds: float = 0.2,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.watermark = watermark
        self.listeners = list(listeners)
        self.owner = owner
        self.lease = lease
        self.clock = clock
        # How often an explicit `compute` looks again at a lease another worker holds.
        self.wait_seconds = wait_seconds
        # The watermark the last full pass started from: every eligible workspace is computed up to it
        # (a workspace another worker held was being computed by that worker).
        self.last_completed: datetime | None = None
        # One computation per workspace at a time in this process: the loop and trigger-recompute.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def run_once(self) -> None:
        pass_watermark = self.watermark()
        with self.sessions() as session:
            workspace_ids = list(
                session.scalars(
                    select(Workspace.id).where(
                        Workspace.status == WorkspaceStatus.ACTIVE, Workspace.type != WorkspaceType.PARENT
                    )
                )
            )
        for workspace_id in workspace_ids:
            summary = self.try_compute(workspace_id)
            if summary is None:
                logger.debug("workspace %s is being computed by another worker; skipped", workspace_id)
                continue
            if summary.seconds > PROGRESS_EVERY_SECONDS:
                logger.info(
                    "computed %d properties of workspace %s in %.1f s (%d changed assignments)",
                    summary.properties,
                    workspace_id,
                    summary.seconds,
                    summary.changed,
                )
        self.last_completed = pass_watermark

    def compute(self, workspace_id: str, only: Collection[str] | None = None) -> ComputeSummary:
        """Compute the workspace (or the properties in `only`) now, waiting for another worker's lease
        to end first: the callers (manual segments, trigger-recompute, broadcasts) read the result."""
        with self._lock_of(workspace_id):
            while self.owner is not None and not self._claim(workspace_id):
                time.sleep(self.wait_seconds)
            return self._compute_claimed(workspace_id, only)

    def try_compute(self, workspace_id: str) -> ComputeSummary | None:
        """Compute the workspace unless another worker holds its lease (then None)."""
        with self._lock_of(workspace_id):
            if self.owner is not None and not self._claim(workspace_id):
                return None
            return self._compute_claimed(workspace_id, None)

    def _lock_of(self, workspace_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(workspace_id, threading.Lock())

    def _compute_claimed(self, workspace_id: str, only: Collection[str] | None) -> ComputeSummary:
        try:
            summary = compute_workspace(
                self.sessions,
                self.store,
                workspace_id,
                now=self.watermark(),
                only=only,
                listeners=self.listeners,
                keep_going=None if self.owner is None else lambda: self._claim(workspace_id),
            )
            # Under the same lease: the analysis facts need one folder at a time per workspace.
            _fold_statuses(self.store, workspace_id)
            return summary
        finally:
            if self.owner is not None:
                self._release(workspace_id)

    def _claim(self, workspace_id: str) -> bool:
        assert self.owner is not None
        with self.sessions.begin() as session:
            return claim_compute(session, workspace_id, self.owner, now=self.clock(), lease=self.lease)

    def _release(self, workspace_id: str) -> None:
        assert self.owner is not None
        try:
            with self.sessions.begin() as session:
                release_compute(session, workspace_id, self.owner, now=self.clock())
        except Exception:
            # The lease then ends at its expiry instead; the computation's own outcome stands.
            logger.exception("workspace %s: compute lease not released", workspace_id)


def _fold_statuses(store: EventStore, workspace_id: str) -> None:
    try:
        folded = fold_pending_statuses(store, workspace_id)
    except Exception:
        # They stay pending, and analysis still counts them (engine.delivery_facts).
        logger.exception("workspace %s: delivery statuses not folded into the analysis facts", workspace_id)
        return
    if folded:
        logger.debug("workspace %s: %d delivery state changes folded", workspace_id, folded)


def wall_clock_watermark(lag_seconds: float) -> Callable[[], datetime]:
    """For a worker apart from the gateways: events older than `lag_seconds` are surely stored."""

    def watermark() -> datetime:
        return datetime.fromtimestamp(time.time() - lag_seconds, UTC)

    return watermark
