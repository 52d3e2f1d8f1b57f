"""Processing assignments: what a period changed reaches the SQL copies and the listeners, at least
once, even when a listener fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.compute.loop import compute_workspace
from engine.compute.process import AssignmentChange, AssignmentListener, forget_user_assignments
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.resource_models import Segment, UserProperty
from tests.engine.compute.conftest import NOW, History

PAID = {
    "entryNode": {
        "id": "e",
        "type": "Trait",
        "path": "plan",
        "operator": {"type": "Equals", "value": "paid"},
    },
    "nodes": [],
}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[AssignmentChange]] = []

    def __call__(self, changes: Sequence[AssignmentChange]) -> None:
        self.calls.append(list(changes))

    def seen(self) -> list[tuple[str, bool]]:
        return sorted((change.user_id, change.in_segment) for call in self.calls for change in call)


@pytest.fixture
def paid(history: History) -> str:
    assert history.sessions is not None
    with history.sessions.begin() as session:
        segment = Segment(workspace_id=history.workspace_id, name="paid", definition=PAID)
        session.add(segment)
    return segment.id


def _compute(history: History, now: datetime, *listeners: AssignmentListener) -> None:
    assert history.sessions is not None
    compute_workspace(history.sessions, history.store, history.workspace_id, now=now, listeners=listeners)


def _copies(sessions: sessionmaker[Session], segment_id: str) -> dict[str, bool]:
    with sessions() as session:
        rows = session.execute(
            select(SegmentAssignment.user_id, SegmentAssignment.in_segment).where(
                SegmentAssignment.segment_id == segment_id
            )
        )
        return {user: value for user, value in rows}


def test_changes_reach_sql_and_listeners_once(history: History, paid: str) -> None:
    assert history.sessions is not None
    recorder = Recorder()
    history.identify("ann", plan="paid")
    history.identify("bob", plan="free")
    _compute(history, NOW, recorder)
    assert _copies(history.sessions, paid) == {"ann": True}
    assert recorder.seen() == [("ann", True)]

    _compute(history, NOW + timedelta(seconds=1), recorder)  # nothing new: nobody is told again
    assert len(recorder.calls) == 1

    history.clock = NOW + timedelta(seconds=1, milliseconds=500)
    history.identify("ann", at=NOW + timedelta(seconds=1), plan="free")
    history.identify("bob", at=NOW + timedelta(seconds=1), plan="paid")
    _compute(history, NOW + timedelta(seconds=2), recorder)
    assert _copies(history.sessions, paid) == {"ann": False, "bob": True}
    assert recorder.calls[-1] and sorted((c.user_id, c.in_segment) for c in recorder.calls[-1]) == [
        ("ann", False),
        ("bob", True),
    ]


def test_a_failed_listener_hears_the_same_changes_again(history: History, paid: str) -> None:
    assert history.sessions is not None
    recorder = Recorder()
    failures = []

    def failing(changes: Sequence[AssignmentChange]) -> None:
        failures.append(len(changes))
        raise RuntimeError("journey store down")

    history.identify("ann", plan="paid")
    _compute(history, NOW, failing)
    assert failures == [1]
    _compute(history, NOW + timedelta(seconds=1), recorder)
    assert recorder.seen() == [("ann", True)]
    _compute(history, NOW + timedelta(seconds=2), recorder)
    assert recorder.seen() == [("ann", True)]


def test_user_property_values_are_copied_as_json_text(history: History) -> None:
    assert history.sessions is not None
    with history.sessions.begin() as session:
        prop = UserProperty(
            workspace_id=history.workspace_id, name="plan", definition={"type": "Trait", "path": "plan"}
        )
        session.add(prop)
    history.identify("ann", plan="paid", seats=3)
    _compute(history, NOW)
    with history.sessions() as session:
        rows = session.execute(
            select(UserPropertyAssignment.user_id, UserPropertyAssignment.value).where(
                UserPropertyAssignment.user_property_id == prop.id
            )
        )
        assert {user: value for user, value in rows} == {"ann": '"paid"'}


def test_deleting_users_or_the_segment_removes_the_copies(history: History, paid: str) -> None:
    assert history.sessions is not None
    history.identify("ann", plan="paid")
    history.identify("bob", plan="paid")
    _compute(history, NOW)
    with history.sessions.begin() as session:
        forget_user_assignments(session, history.workspace_id, ["ann"])
    assert _copies(history.sessions, paid) == {"bob": True}
    with history.sessions.begin() as session:
        session.delete(session.get_one(Segment, paid))
    assert _copies(history.sessions, paid) == {}


def test_a_copy_never_puts_back_a_value_older_than_the_one_stored(history: History, paid: str) -> None:
    assert history.sessions is not None
    history.identify("ann", plan="paid")
    _compute(history, NOW)
    later = datetime(2100, 1, 1, tzinfo=UTC)  # an immediate write (a subscription change) made after
    with history.sessions.begin() as session:
        copy = session.get(SegmentAssignment, (history.workspace_id, paid, "ann"))
        assert copy is not None
        copy.assigned_at = later

    history.clock = NOW + timedelta(seconds=1, milliseconds=500)
    history.identify("ann", at=NOW + timedelta(seconds=1), plan="free")
    _compute(history, NOW + timedelta(seconds=2))

    assert _copies(history.sessions, paid) == {"ann": True}


def test_copies_run_one_at_a_time_and_all_land_before_the_computation_returns(history: History) -> None:
    assert history.sessions is not None
    plans = ["paid", "free", "trial", "team", "solo"]
    with history.sessions.begin() as session:
        segments = [
            Segment(
                workspace_id=history.workspace_id,
                name=plan,
                definition={
                    "entryNode": {
                        "id": "e",
                        "type": "Trait",
                        "path": "plan",
                        "operator": {"type": "Equals", "value": plan},
                    },
                    "nodes": [],
                },
            )
            for plan in plans
        ]
        session.add_all(segments)
    for plan in plans:
        history.identify(f"{plan}-user", plan=plan)
    busy = threading.Lock()
    heard: list[str] = []

    def slow(changes: Sequence[AssignmentChange]) -> None:
        # Two copies told at once would find the lock taken.
        assert busy.acquire(blocking=False), "two copies told listeners at once"
        try:
            time.sleep(0.05)
            heard.extend(change.property_id for change in changes)
        finally:
            busy.release()

    def failing_for_trial(changes: Sequence[AssignmentChange]) -> None:
        if any(change.user_id == "trial-user" for change in changes):
            raise RuntimeError("journey store down")

    summary = compute_workspace(
        history.sessions, history.store, history.workspace_id, now=NOW, listeners=[slow, failing_for_trial]
    )

    assert (summary.properties, summary.failed) == (5, 1)
    assert sorted(heard) == sorted(segment.id for segment in segments)
    for segment, plan in zip(segments, plans, strict=True):
        assert _copies(history.sessions, segment.id) == {f"{plan}-user": True}


def test_the_copy_writes_its_times_as_the_orm_writes_them(history: History, paid: str) -> None:
    # SQLite compares times as text: a copy written in another form than the ORM's would not equal,
    # nor order correctly against, the same instant written by the ORM (a journey's start, say).
    assert history.sessions is not None
    history.identify("ann", plan="paid")
    _compute(history, NOW)
    with history.sessions() as session:
        stamp = session.scalar(
            select(SegmentAssignment.assigned_at).where(SegmentAssignment.user_id == "ann")
        )
        assert stamp is not None
        same_instant = select(func.count()).where(SegmentAssignment.assigned_at == stamp)
        assert session.scalar(same_instant) == 1
