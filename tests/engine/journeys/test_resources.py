"""Journeys as resources, on SQLite and Postgres: Dittofeed's upsert semantics (find by id else name,
status transitions, draft clearing), typed refusals, definitions checked against their own workspace,
and deletion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import InvalidInput
from engine.journeys import resources as journeys
from engine.storage.journey_models import Journey, JourneyStatus
from engine.storage.resource_models import (
    ChannelType,
    MessageTemplate,
    Segment,
    SubscriptionGroup,
    SubscriptionGroupType,
)
from engine.workspaces import create_workspace

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
KEYED = {
    "entryNode": {
        "type": "KeyedPerformed",
        "id": "1",
        "event": "APPOINTMENT_CANCELLED",
        "key": "appointmentId",
    },
    "nodes": [],
}
MANUAL = {"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []}


@dataclass(frozen=True)
class Workspace:
    """A workspace with one of each resource a journey names."""

    id: str
    segment: str
    keyed_segment: str
    manual_segment: str
    template: str
    group: str


def _workspace(sessions: sessionmaker[Session]) -> Workspace:
    with sessions.begin() as session:
        workspace_id = create_workspace(session, f"w-{uuid.uuid4()}").id
        rows: dict[str, Segment | MessageTemplate | SubscriptionGroup] = {
            "segment": Segment(workspace_id=workspace_id, name="Paid", definition=TRAIT),
            "keyed_segment": Segment(workspace_id=workspace_id, name="Cancelled", definition=KEYED),
            "manual_segment": Segment(workspace_id=workspace_id, name="Hand-picked", definition=MANUAL),
            "template": MessageTemplate(
                workspace_id=workspace_id, name="Hello", definition={"type": "Sms", "body": "Hi"}
            ),
            "group": SubscriptionGroup(
                workspace_id=workspace_id,
                name="News",
                channel=ChannelType.SMS,
                type=SubscriptionGroupType.OPT_OUT,
            ),
        }
        session.add_all(rows.values())
        session.flush()
        return Workspace(workspace_id, **{key: row.id for key, row in rows.items()})


def definition(
    w: Workspace, *, entry: dict[str, Any] | None = None, split_segment: str | None = None
) -> dict[str, Any]:
    """Entry → welcome → one-hour delay → split on `split_segment` (true: nudge, false: exit)."""
    return {
        "entryNode": entry or {"type": "EntryNode", "segment": w.segment, "child": "welcome"},
        "exitNode": {"type": "ExitNode"},
        "nodes": [
            {
                "type": "MessageNode",
                "id": "welcome",
                "variant": {"type": "Sms", "templateId": w.template},
                "subscriptionGroupId": w.group,
                "child": "wait",
            },
            {
                "type": "DelayNode",
                "id": "wait",
                "variant": {"type": "Second", "seconds": 3600},
                "child": "split",
            },
            {
                "type": "SegmentSplitNode",
                "id": "split",
                "variant": {
                    "type": "Boolean",
                    "segment": split_segment or w.segment,
                    "trueChild": "nudge",
                    "falseChild": "ExitNode",
                },
            },
            {
                "type": "MessageNode",
                "id": "nudge",
                "variant": {"type": "Sms", "templateId": w.template},
                "child": "ExitNode",
            },
        ],
    }


def _upsert(
    sessions: sessionmaker[Session], workspace_id: str, at: datetime = T0, **fields: Any
) -> dict[str, Any]:
    with sessions.begin() as session:
        return journeys.journey_resource(journeys.upsert_journey(session, workspace_id, now=at, **fields))


def _refusal(sessions: sessionmaker[Session], workspace_id: str, **fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        journeys.upsert_journey(session, workspace_id, now=T0, **fields)
    return refused.value


def _violation_types(error: InvalidInput) -> list[str]:
    return [violation["type"] for violation in cast(list[dict[str, str]], error.body["violations"])]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _status_updated_at(sessions: sessionmaker[Session], journey_id: str) -> datetime | None:
    with sessions.begin() as session:
        journey = session.get(Journey, journey_id)
        assert journey is not None
        return journey.status_updated_at


def test_create_then_find_by_name_then_rename_by_id(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    created = _upsert(sessions, w.id, name="Onboarding", draft={"nodes": [], "edges": []})
    assert created == {
        "id": created["id"],
        "workspaceId": w.id,
        "name": "Onboarding",
        "status": "NotStarted",
        "draft": {"nodes": [], "edges": []},
        "canRunMultiple": False,
        "createdAt": _ms(T0),
        "updatedAt": _ms(T0),
    }
    later = T0 + timedelta(minutes=5)
    by_name = _upsert(sessions, w.id, later, name="Onboarding", definition=definition(w))
    assert (by_name["id"], by_name["definition"], by_name["updatedAt"]) == (
        created["id"],
        definition(w),
        _ms(later),
    )
    renamed = _upsert(sessions, w.id, later, id=created["id"], name="Welcome series", can_run_multiple=True)
    assert (renamed["id"], renamed["name"], renamed["canRunMultiple"]) == (
        created["id"],
        "Welcome series",
        True,
    )
    assert renamed["definition"] == definition(w)  # not sent, so left as it was
    with sessions.begin() as session:
        assert [j.name for j in journeys.list_journeys(session, w.id)] == ["Welcome series"]


def test_a_client_chosen_id_is_kept_in_canonical_form(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    chosen = str(uuid.uuid4())
    assert _upsert(sessions, w.id, id=chosen.upper(), name="Chosen")["id"] == chosen


def test_typed_refusals_of_ids_and_names(sessions: sessionmaker[Session]) -> None:
    w, other = _workspace(sessions), _workspace(sessions)
    theirs = _upsert(sessions, other.id, name="Theirs")
    _upsert(sessions, w.id, name="Taken")
    mine = _upsert(sessions, w.id, name="Mine")

    assert _refusal(sessions, w.id, id="not-a-uuid", name="x").body == {
        "type": "IdError",
        "message": "Invalid journey id, must be a valid v4 UUID",
    }
    foreign = _refusal(sessions, w.id, id=theirs["id"], name="Stolen")
    assert (foreign.body["type"], foreign.field) == ("IdError", "body/id")
    nameless = _refusal(sessions, w.id, id=str(uuid.uuid4()))
    assert nameless.body == {"type": "BadValues", "message": "Name is required when creating a journey"}
    clash = _refusal(sessions, w.id, id=mine["id"], name="Taken")
    assert (clash.body["type"], clash.field) == ("UniqueConstraintViolation", "body/name")
    # Names are unique per workspace only.
    assert _upsert(sessions, w.id, name="Theirs")["workspaceId"] == w.id


def test_status_transitions(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    journey = _upsert(sessions, w.id, name="J", definition=definition(w))
    refused = _refusal(sessions, w.id, id=journey["id"], status=JourneyStatus.PAUSED)
    assert refused.body == {
        "type": "StatusTransitionError",
        "message": "Cannot pause a journey that has not been started",
    }
    assert refused.field == "body/status"
    started_at = T0 + timedelta(hours=1)
    running = _upsert(sessions, w.id, started_at, id=journey["id"], status=JourneyStatus.RUNNING)
    assert running["status"] == "Running"
    assert _status_updated_at(sessions, journey["id"]) == started_at
    # Sending the status it already has is not a change.
    _upsert(sessions, w.id, started_at + timedelta(hours=1), id=journey["id"], status=JourneyStatus.RUNNING)
    assert _status_updated_at(sessions, journey["id"]) == started_at
    back = _refusal(sessions, w.id, id=journey["id"], status=JourneyStatus.NOT_STARTED)
    assert back.body["type"] == "StatusTransitionError"
    paused_at = T0 + timedelta(hours=3)
    assert (
        _upsert(sessions, w.id, paused_at, id=journey["id"], status=JourneyStatus.PAUSED)["status"]
        == "Paused"
    )
    assert _status_updated_at(sessions, journey["id"]) == paused_at
    assert _upsert(sessions, w.id, id=journey["id"], status=JourneyStatus.RUNNING)["status"] == "Running"


def test_a_journey_without_a_definition_cannot_start(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    cant_start = {
        "type": "ConstraintViolation",
        "violations": [
            {"type": "CantStart", "message": "Draft journey must have a definition to be started"}
        ],
    }
    assert _refusal(sessions, w.id, name="J", status=JourneyStatus.RUNNING).body == cant_start
    draft_only = _upsert(sessions, w.id, name="J", draft={"nodes": []})
    assert _refusal(sessions, w.id, id=draft_only["id"], status=JourneyStatus.RUNNING).body == cant_start
    started = _upsert(
        sessions, w.id, id=draft_only["id"], definition=definition(w), status=JourneyStatus.RUNNING
    )
    assert started["status"] == "Running"


def test_sending_a_definition_or_a_null_draft_clears_the_draft(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    draft = {"nodes": [{"id": "a"}], "edges": []}
    journey = _upsert(sessions, w.id, name="J", draft=draft)
    assert _upsert(sessions, w.id, id=journey["id"], name="J2")["draft"] == draft  # draft not sent: kept
    assert "draft" not in _upsert(sessions, w.id, id=journey["id"], draft=None)
    _upsert(sessions, w.id, id=journey["id"], draft=draft)
    published = _upsert(sessions, w.id, id=journey["id"], definition=definition(w))
    assert "draft" not in published
    # A draft sent with a definition is dropped too: the published definition supersedes it.
    assert "draft" not in _upsert(sessions, w.id, id=journey["id"], definition=definition(w), draft=draft)
    not_an_object = _refusal(sessions, w.id, id=journey["id"], draft=["nodes"])
    assert not_an_object.field == "body/draft"


def test_partial_resource_leaves_out_definition_and_draft(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    with sessions.begin() as session:
        journey = journeys.upsert_journey(session, w.id, name="J", definition=definition(w), now=T0)
        journey.draft = {"nodes": []}
        partial = journeys.journey_resource(journey, partial=True)
    assert set(partial) == {"id", "workspaceId", "name", "status", "canRunMultiple", "createdAt", "updatedAt"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d, w, o: d["entryNode"].update(child="nowhere"), "entryNode/child"),
        (lambda d, w, o: d["nodes"][0].update(child="EntryNode"), "nodes/0/child"),
        (lambda d, w, o: d["nodes"][2]["variant"].update(trueChild="gone"), "nodes/2/variant/trueChild"),
        (lambda d, w, o: d["nodes"][3].update(id="wait"), "nodes/3/id"),
        (lambda d, w, o: d["nodes"][3].update(id="ExitNode"), "nodes/3/id"),
        (lambda d, w, o: d["entryNode"].update(segment=o.segment), "entryNode/segment"),
        (lambda d, w, o: d["entryNode"].update(segment="not-a-uuid"), "entryNode/segment"),
        (
            lambda d, w, o: d["nodes"][2]["variant"].update(segment=str(uuid.uuid4())),
            "nodes/2/variant/segment",
        ),
        (
            lambda d, w, o: d["nodes"][3]["variant"].update(templateId=o.template),
            "nodes/3/variant/templateId",
        ),
        (lambda d, w, o: d["nodes"][0].update(subscriptionGroupId=o.group), "nodes/0/subscriptionGroupId"),
        (lambda d, w, o: d["nodes"][1]["variant"].update(seconds=-1), "nodes/1/variant/seconds"),
    ],
)
def test_a_definition_names_only_its_own_nodes_and_its_workspace_s_resources(
    sessions: sessionmaker[Session], change: Any, field: str
) -> None:
    w, other = _workspace(sessions), _workspace(sessions)
    broken = definition(w)
    change(broken, w, other)
    refused = _refusal(sessions, w.id, name="J", definition=broken)
    assert refused.field == f"body/definition/{field}"
    assert refused.message.startswith(f"body/definition/{field} ")


def test_wait_for_and_cohort_children_name_nodes(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    base = definition(w)
    wait_for = {
        "type": "WaitForNode",
        "id": "await",
        "timeoutSeconds": 600,
        "timeoutChild": "ExitNode",
        "segmentChildren": [{"id": "missing", "segmentId": w.segment}],
    }
    cohort = {
        "type": "RandomCohortNode",
        "id": "ab",
        "children": [{"id": "lost", "percent": 50, "name": "A"}],
    }
    for node, field in ((wait_for, "nodes/4/segmentChildren/0/id"), (cohort, "nodes/4/children/0/id")):
        refused = _refusal(sessions, w.id, name="J", definition={**base, "nodes": [*base["nodes"], node]})
        assert refused.field == f"body/definition/{field}"


def test_constraint_violations_of_keyed_performed_segments(sessions: sessionmaker[Session]) -> None:
    w = _workspace(sessions)
    event_entry: dict[str, Any] = {
        "type": "EventEntryNode",
        "event": "APPOINTMENT_BOOKED",
        "key": "appointmentId",
        "child": "welcome",
    }

    def waiting_for(segment_id: str) -> dict[str, Any]:
        base = definition(w, entry=event_entry)
        wait = {
            "type": "WaitForNode",
            "id": "await",
            "timeoutSeconds": 600,
            "timeoutChild": "ExitNode",
            "segmentChildren": [{"id": "nudge", "segmentId": segment_id}],
        }
        return {**base, "nodes": [*base["nodes"], wait]}

    refused = _refusal(sessions, w.id, name="J", definition=waiting_for(w.segment))
    assert refused.body["type"] == "ConstraintViolation"
    assert _violation_types(refused) == ["WaitForNodeAndEventEntryNode"]
    assert (
        _upsert(sessions, w.id, name="Keyed wait", definition=waiting_for(w.keyed_segment))["name"]
        == "Keyed wait"
    )

    refused = _refusal(sessions, w.id, name="J", definition=definition(w, split_segment=w.keyed_segment))
    assert _violation_types(refused) == ["KeyedPerformedSegmentEntryNode"]
    keyed_split = definition(w, entry=event_entry, split_segment=w.keyed_segment)
    assert _upsert(sessions, w.id, name="Keyed split", definition=keyed_split)["name"] == "Keyed split"


def test_delete_is_scoped_to_the_workspace(sessions: sessionmaker[Session]) -> None:
    w, other = _workspace(sessions), _workspace(sessions)
    journey = _upsert(sessions, w.id, name="J", definition=definition(w))
    with sessions.begin() as session:
        assert journeys.delete_journey(session, other.id, journey["id"]) is False
        assert journeys.delete_journey(session, w.id, "not-a-uuid") is False
    with sessions.begin() as session:
        assert journeys.delete_journey(session, w.id, journey["id"].upper()) is True
    with sessions.begin() as session:
        assert journeys.delete_journey(session, w.id, journey["id"]) is False
        assert journeys.list_journeys(session, w.id) == []


def test_list_narrows_by_ids_within_the_workspace(sessions: sessionmaker[Session]) -> None:
    w, other = _workspace(sessions), _workspace(sessions)
    first = _upsert(sessions, w.id, name="First")
    _upsert(sessions, w.id, T0 + timedelta(seconds=1), name="Second")
    theirs = _upsert(sessions, other.id, name="Theirs")
    with sessions.begin() as session:
        assert [j.name for j in journeys.list_journeys(session, w.id)] == ["First", "Second"]
        narrowed = journeys.list_journeys(session, w.id, [first["id"], theirs["id"]])
        assert [j.id for j in narrowed] == [first["id"]]


def test_a_journey_starting_on_a_manual_segment_names_it_for_recompute(
    sessions: sessionmaker[Session],
) -> None:
    w = _workspace(sessions)
    manual_entry = {"type": "EntryNode", "segment": w.manual_segment, "child": "welcome"}
    started_at = T0 + timedelta(hours=1)
    with sessions.begin() as session:
        journey = journeys.upsert_journey(
            session, w.id, name="J", definition=definition(w, entry=manual_entry), now=T0
        )
        assert journeys.started_manual_segment(session, journey, started_at=T0) is None  # not running
        journeys.upsert_journey(session, w.id, id=journey.id, status=JourneyStatus.RUNNING, now=started_at)
        assert journeys.started_manual_segment(session, journey, started_at=started_at) == w.manual_segment
        # Already running: a later edit starts nothing.
        later = started_at + timedelta(minutes=1)
        journeys.upsert_journey(session, w.id, id=journey.id, status=JourneyStatus.RUNNING, now=later)
        assert journeys.started_manual_segment(session, journey, started_at=later) is None
        computed = journeys.upsert_journey(
            session, w.id, name="Computed", definition=definition(w), status=JourneyStatus.RUNNING, now=later
        )
        assert journeys.started_manual_segment(session, computed, started_at=later) is None
