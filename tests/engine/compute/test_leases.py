"""Compute leases: workers sharing one store compute a workspace one at a time, a dead worker's
workspace is taken over once its lease expires, and two workers racing give one worker's results."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.compute.leases import claim_compute, read_lease, release_compute
from engine.compute.loop import ComputeProperties, compute_workspace
from engine.compute.process import AssignmentChange
from engine.compute.run import list_periods
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.models import Workspace
from engine.storage.resource_models import Segment, UserProperty
from tests.engine.compute.conftest import NOW, History

LEASE = timedelta(minutes=10)
PAID = {
    "entryNode": {
        "id": "e",
        "type": "Trait",
        "path": "plan",
        "operator": {"type": "Equals", "value": "paid"},
    },
    "nodes": [],
}
LOGGED_IN_TWICE = {
    "entryNode": {"id": "e", "type": "Performed", "event": "LOGIN", "times": 2, "timesOperator": ">="},
    "nodes": [],
}
PURCHASES = {"type": "PerformedMany", "or": [{"event": "BUY"}]}
PLAN = {"type": "Trait", "path": "plan"}


class Clock:
    """The lease clock of the workers in a test, moved by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.changes: list[AssignmentChange] = []

    def __call__(self, changes: Sequence[AssignmentChange]) -> None:
        self.changes += changes


def _workspace(sessions: sessionmaker[Session], name: str) -> str:
    with sessions.begin() as session:
        workspace = Workspace(name=name)
        session.add(workspace)
    return workspace.id


def _claim(sessions: sessionmaker[Session], workspace_id: str, owner: str, now: datetime) -> bool:
    with sessions.begin() as session:
        return claim_compute(session, workspace_id, owner, now=now, lease=LEASE)


def _release(sessions: sessionmaker[Session], workspace_id: str, owner: str, now: datetime) -> None:
    with sessions.begin() as session:
        release_compute(session, workspace_id, owner, now=now)


def _add(history: History, model: type[Segment] | type[UserProperty], definition: dict[str, Any]) -> str:
    assert history.sessions is not None
    with history.sessions.begin() as session:
        resource = model(workspace_id=history.workspace_id, name=f"r {uuid.uuid4()}", definition=definition)
        session.add(resource)
    return resource.id


def _members(sessions: sessionmaker[Session], segment_id: str) -> set[str]:
    with sessions() as session:
        rows = session.execute(
            select(SegmentAssignment.user_id).where(
                SegmentAssignment.segment_id == segment_id, SegmentAssignment.in_segment.is_(True)
            )
        )
        return set(rows.scalars())


def _worker(
    history: History, owner: str | None, clock: Clock | None = None, **options: Any
) -> ComputeProperties:
    assert history.sessions is not None
    return ComputeProperties(
        history.sessions,
        history.store,
        lambda: NOW,
        owner=owner,
        lease=LEASE,
        clock=clock or Clock(),
        **options,
    )


def test_a_lease_is_held_by_one_owner_until_released_or_expired(sessions: sessionmaker[Session]) -> None:
    workspace = _workspace(sessions, "w")
    assert _claim(sessions, workspace, "a", NOW)
    assert not _claim(sessions, workspace, "b", NOW)
    assert not _claim(sessions, workspace, "b", NOW + LEASE - timedelta(milliseconds=1))

    assert _claim(sessions, workspace, "a", NOW + timedelta(minutes=5))  # the holder renews
    assert not _claim(sessions, workspace, "b", NOW + LEASE)
    assert _claim(sessions, workspace, "b", NOW + timedelta(minutes=5) + LEASE)  # expired: taken over
    with sessions() as session:
        lease = read_lease(session, workspace)
        assert lease is not None
        assert (lease.owner, lease.expires_at) == ("b", NOW + timedelta(minutes=5) + 2 * LEASE)

    later = NOW + timedelta(minutes=20)  # within b's lease
    _release(sessions, workspace, "a", later)  # no longer a's to release
    assert not _claim(sessions, workspace, "a", later)
    _release(sessions, workspace, "b", later)
    assert _claim(sessions, workspace, "a", later)


def test_leases_are_per_workspace(sessions: sessionmaker[Session]) -> None:
    first, second = _workspace(sessions, "first"), _workspace(sessions, "second")
    assert _claim(sessions, first, "a", NOW)
    assert _claim(sessions, second, "b", NOW)
    assert not _claim(sessions, second, "a", NOW)


def test_a_worker_skips_the_workspace_another_worker_is_computing(history: History) -> None:
    assert history.sessions is not None
    paid = _add(history, Segment, PAID)
    history.identify("ann", plan="paid")
    other = _worker(history, "worker-b")
    seen_by_other: list[object] = []

    def meanwhile(changes: Sequence[AssignmentChange]) -> None:
        # Called in the middle of worker-a's computation of the workspace, while it holds the lease.
        seen_by_other.append(other.try_compute(history.workspace_id))
        other.run_once()

    worker = _worker(history, "worker-a", listeners=[meanwhile])
    summary = worker.try_compute(history.workspace_id)
    assert summary is not None and summary.properties == 1
    assert seen_by_other == [None]
    assert _members(history.sessions, paid) == {"ann"}

    # worker-a is done: the workspace is free again.
    assert other.try_compute(history.workspace_id) is not None
    with history.sessions() as session:
        lease = read_lease(session, history.workspace_id)
        assert lease is not None and (lease.owner, lease.expires_at) == ("worker-b", NOW)


def test_a_dead_workers_workspace_is_taken_over_once_its_lease_expires(history: History) -> None:
    assert history.sessions is not None
    paid = _add(history, Segment, PAID)
    history.identify("ann", plan="paid")
    # worker-a claimed the workspace and died without computing it or releasing the lease.
    assert _claim(history.sessions, history.workspace_id, "worker-a", NOW)
    clock = Clock(NOW + timedelta(minutes=1))
    worker = _worker(history, "worker-b", clock)

    worker.run_once()
    assert list_periods(history.store, history.workspace_id) == []
    assert _members(history.sessions, paid) == set()

    clock.now = NOW + LEASE
    worker.run_once()
    assert [period[0] for period in list_periods(history.store, history.workspace_id)] == [paid]
    assert _members(history.sessions, paid) == {"ann"}


def test_an_explicit_compute_waits_for_the_lease_instead_of_skipping(history: History) -> None:
    assert history.sessions is not None
    paid = _add(history, Segment, PAID)
    history.identify("ann", plan="paid")
    assert _claim(history.sessions, history.workspace_id, "worker-a", NOW)
    refused = threading.Event()

    class Watching(Clock):
        def __call__(self) -> datetime:
            if not refused.is_set() and read_owner() == "worker-a":
                refused.set()
            return self.now

    def read_owner() -> str | None:
        assert history.sessions is not None
        with history.sessions() as session:
            lease = read_lease(session, history.workspace_id)
            return None if lease is None else lease.owner

    worker = _worker(history, "worker-b", Watching(), wait_seconds=0.01)
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(worker.compute(history.workspace_id, {paid})))
    thread.start()
    refused.wait()
    assert list_periods(history.store, history.workspace_id) == []
    _release(history.sessions, history.workspace_id, "worker-a", NOW)
    thread.join()
    assert len(done) == 1
    assert _members(history.sessions, paid) == {"ann"}


def test_a_worker_that_lost_its_lease_stops_before_the_next_property(history: History) -> None:
    assert history.sessions is not None
    for definition in (PAID, LOGGED_IN_TWICE):
        _add(history, Segment, definition)
    history.identify("ann", plan="paid")
    history.track("ann", "LOGIN")
    history.track("ann", "LOGIN")

    class Stalled(Clock):
        """worker-a's clock. Read first to claim the workspace, then to renew the lease after the first
        property: by then worker-a has stalled past its lease and worker-b has taken the workspace."""

        readings = 0

        def __call__(self) -> datetime:
            self.readings += 1
            if self.readings == 2:
                assert history.sessions is not None
                assert _claim(history.sessions, history.workspace_id, "worker-b", NOW + LEASE)
                self.now = NOW + LEASE + timedelta(minutes=1)
            return self.now

    summary = _worker(history, "worker-a", Stalled()).try_compute(history.workspace_id)
    assert summary is not None and summary.properties == 1
    assert len(list_periods(history.store, history.workspace_id)) == 1
    with history.sessions() as session:
        lease = read_lease(session, history.workspace_id)
        assert lease is not None and lease.owner == "worker-b"


def test_without_an_owner_a_worker_computes_without_a_lease(history: History) -> None:
    assert history.sessions is not None
    paid = _add(history, Segment, PAID)
    history.identify("ann", plan="paid")
    _worker(history, None).run_once()
    assert _members(history.sessions, paid) == {"ann"}
    with history.sessions() as session:
        assert read_lease(session, history.workspace_id) is None


class Feed:
    """Events arriving while the workers run: the watermark moves past an event once it is stored."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.stored_until = history.clock
        self.purchases: dict[str, int] = {}

    def watermark(self) -> datetime:
        return self.stored_until

    def send_round(self, round_number: int, users: Sequence[str]) -> None:
        for index, user in enumerate(users):
            step = (round_number + index) % 4
            if step == 0:
                self.history.identify(user, plan="paid" if round_number % 3 else "free")
            elif step == 1:
                self.history.track(user, "LOGIN")
            elif step == 2:
                self.history.track(user, "BUY", amount=round_number)
                self.purchases[user] = self.purchases.get(user, 0) + 1
            else:
                self.history.identify(user, plan="free")
            self.stored_until = self.history.clock


class Passes:
    """Counts each worker's finished passes, so the feed can wait for both to run between rounds."""

    def __init__(self, workers: int) -> None:
        self.done = [0] * workers
        self.changed = threading.Condition()

    def finish(self, worker: int) -> None:
        with self.changed:
            self.done[worker] += 1
            self.changed.notify_all()

    def wait_for_all_after(self, seen: list[int]) -> None:
        with self.changed:
            self.changed.wait_for(
                lambda: all(now > before for now, before in zip(self.done, seen, strict=True))
            )


def _grouped_lengths(history: History, property_id: str) -> dict[str, int]:
    """Per user, how many values the property's grouped state holds: one per event aggregated."""
    rows = history.store.query(
        "SELECT user_id, length(groupArrayMerge(grouped_values)) FROM computed_property_state_v4"
        " WHERE workspace_id = {w:String} AND computed_property_id = {p:String} GROUP BY user_id",
        {"w": history.workspace_id, "p": property_id},
    )
    return {str(user): int(length) for user, length in rows}


def test_two_workers_racing_on_a_workspace_give_one_workers_results(history: History) -> None:
    sessions = history.sessions
    assert sessions is not None
    definitions: list[tuple[type[Segment] | type[UserProperty], dict[str, Any]]] = [
        (Segment, PAID),
        (Segment, LOGGED_IN_TWICE),
        (UserProperty, PURCHASES),
        (UserProperty, PLAN),
    ]
    raced = [_add(history, model, definition) for model, definition in definitions]
    feed = Feed(history)
    recorders = [Recorder(), Recorder()]
    workers = [
        ComputeProperties(sessions, history.store, feed.watermark, [recorder], owner=owner, lease=LEASE)
        for owner, recorder in zip(("worker-a", "worker-b"), recorders, strict=True)
    ]
    passes = Passes(len(workers))
    stop = threading.Event()

    def loop(index: int) -> None:
        while not stop.is_set():
            workers[index].run_once()
            passes.finish(index)

    threads = [threading.Thread(target=loop, args=(index,)) for index in range(len(workers))]
    for thread in threads:
        thread.start()
    try:
        for round_number in range(5):
            seen = list(passes.done)
            feed.send_round(round_number, ["ann", "bob", "cat", "dan"])
            passes.wait_for_all_after(seen)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    workers[0].run_once()  # up to the last event

    # A single worker computing the same definitions over the whole history, from scratch.
    single = [_add(history, model, definition) for model, definition in definitions]
    summary = compute_workspace(
        sessions, history.store, history.workspace_id, now=feed.watermark(), only=single
    )
    assert (summary.properties, summary.failed) == (4, 0)

    def latest(property_id: str) -> dict[str, str]:
        return {
            user: value
            for user, value in history.assignments(property_id).items()
            if value not in ("", "false")
        }

    for raced_id, single_id in zip(raced, single, strict=True):
        assert latest(raced_id) == latest(single_id)
    assert _members(sessions, raced[0]) == _members(sessions, single[0])
    assert _members(sessions, raced[1]) == _members(sessions, single[1])
    # Every event was aggregated once: the grouped state holds each purchase once.
    assert _grouped_lengths(history, raced[2]) == _grouped_lengths(history, single[2]) == feed.purchases
    # Every change was signalled once, by whichever worker computed it.
    signals = [(c.property_id, c.user_id, c.assigned_at) for recorder in recorders for c in recorder.changes]
    assert len(signals) == len(set(signals))
