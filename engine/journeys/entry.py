"""Starting journey runs (Dittofeed §7.3, §9.3 step 3).

A segment-entry journey takes every user the SQL copy of segment membership holds in its segment; an
event-entry journey takes each user whose track event matches its event pattern. Only Running journeys
of Active, non-Parent workspaces start runs. A run starts at the entry node, due at once: the runner
records the entry and moves on.

Starting is idempotent. A live run holds its (journey, user, live key) unique, so a repeated start — the
same event again, the next period's scan, another worker at the same moment — inserts nothing.

Re-entry after a run exited needs the journey's `canRunMultiple` (upstream's `isRunnable`): then a
segment-entry user enters again once the segment turned true again after the last run started, or, with
the entry's `reEnter`, as soon as the last run exited while the user is still in the segment; an
event-entry key runs again on its next event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session, aliased

from engine.errors import InvalidInput
from engine.journeys.definition import ENTRY, EVENT_ENTRY, EventEntryNode, JourneyDefinition, parse_journey
from engine.messaging.ledger import derive_message_id
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.inserts import insert_new
from engine.storage.journey_models import Journey, JourneyRun, JourneyStatus, RunState
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType, new_id

logger = logging.getLogger(__name__)

_CHUNK = 500
# One step of a JSONPath (§7.0) after `$`: `.name`, `['name']`, `["name"]` or `[index]`.
_PATH_STEP = re.compile(r"""\.([^.\[\]]+)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*(-?\d+)\s*\]""")
_MISSING = object()


@dataclass(frozen=True)
class EventKey:
    """What tells one event-entry run of a user from another: the key's name (the entry's `key`, else
    `messageId`) and its value in the triggering event."""

    name: str
    value: str


def event_matches(pattern: str, event: str) -> bool:
    """§7.0: `""` or `"*"` match every event, `"prefix*"` starts-with, anything else exactly."""
    if pattern in ("", "*"):
        return True
    if pattern.endswith("*"):
        return event.startswith(pattern[:-1])
    return event == pattern


def event_key(entry: EventEntryNode, properties: Mapping[str, Any], message_id: str) -> EventKey | None:
    """The run key of an event: the string or number at the entry's `key` path of its properties, or
    its messageId when the entry has no key. None (no run) when the key's value is missing or empty."""
    if not entry.key:
        return EventKey("messageId", message_id) if message_id else None
    value = value_at_path(properties, entry.key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = _js_string(value)
    return EventKey(entry.key, text) if text else None


def instance_key(workspace_id: str, user_id: str, key: EventKey) -> str:
    """Upstream's uuidv5("<userId>-<keyName>-<keyValue>", workspaceId)."""
    return derive_message_id(workspace_id, f"{user_id}-{key.name}-{key.value}")


def value_at_path(document: Any, path: str) -> Any:
    """The value at a JSONPath (§7.0: `$` prepended when missing) of plain steps — names, quoted names and
    indexes; None when it is absent or the path uses anything else (wildcards, filters)."""
    path = path if path.startswith("$") else f"$.{path}"
    value: Any = document
    position = 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            return None
        position = step.end()
        name, single, double, index = step.groups()
        if index is not None:
            value = (
                value[int(index)]
                if isinstance(value, list) and -len(value) <= int(index) < len(value)
                else _MISSING
            )
        else:
            field = name if name is not None else single if single is not None else double
            value = value.get(field, _MISSING) if isinstance(value, dict) and field != "*" else _MISSING
        if value is _MISSING:
            return None
    return value


def running_journeys(
    session: Session, workspace_id: str | None = None, *, active: bool = True, entry: str | None = None
) -> Iterator[tuple[Journey, JourneyDefinition]]:
    """Running journeys with their parsed definitions: of one workspace, when given; with `active`, only
    of Active, non-Parent workspaces (those that may start runs); with `entry`, only those whose entry
    node has that type. A definition that does not parse is logged and skipped."""
    statement = select(Journey).where(Journey.status == JourneyStatus.RUNNING).order_by(Journey.id)
    if entry is not None:
        # Read in SQL, so the ingest path parses no definition of a journey it cannot start.
        statement = statement.where(Journey.definition["entryNode"]["type"].as_string() == entry)
    if active:
        statement = statement.join(Workspace, Workspace.id == Journey.workspace_id).where(
            Workspace.status == WorkspaceStatus.ACTIVE, Workspace.type != WorkspaceType.PARENT
        )
    if workspace_id is not None:
        statement = statement.where(Journey.workspace_id == workspace_id)
    for journey in session.scalars(statement):
        try:
            definition = parse_journey(journey.definition)
        except InvalidInput as error:
            logger.warning("journey %s not run: its definition is invalid (%s)", journey.id, error)
            continue
        yield journey, definition


def enter_segment_members(session: Session, now: datetime) -> int:
    """Start a run for each user in the entry segment of a Running segment-entry journey who may enter
    (see the module docstring); the caller commits. Returns how many runs started."""
    started = 0
    for journey, definition in list(running_journeys(session, entry=ENTRY)):
        entry = definition.entryNode
        if isinstance(entry, EventEntryNode):
            continue
        earlier = aliased(JourneyRun)
        blocks: ColumnElement[bool]
        if not journey.can_run_multiple:
            blocks = true()  # any run, live or exited
        elif entry.reEnter:
            blocks = earlier.live_key.is_not(None)
        else:
            blocks = or_(earlier.live_key.is_not(None), earlier.started_at >= SegmentAssignment.assigned_at)
        blocked = (
            select(earlier.id)
            .where(earlier.journey_id == journey.id, earlier.user_id == SegmentAssignment.user_id, blocks)
            .exists()
        )
        user_ids = session.scalars(
            select(SegmentAssignment.user_id).where(
                SegmentAssignment.workspace_id == journey.workspace_id,
                SegmentAssignment.segment_id == entry.segment,
                SegmentAssignment.in_segment.is_(True),
                ~blocked,
            )
        ).all()
        rows = [_run_row(journey, definition, user_id, "", now) for user_id in user_ids]
        started += len(insert_new(session, JourneyRun.__table__, rows))  # type: ignore[arg-type]
    return started


def enter_from_events(
    session: Session, workspace_id: str, events: Sequence[Mapping[str, Any]], now: datetime
) -> int:
    """Start the runs of the workspace's Running event-entry journeys that these track events (Segment
    messages: userId, event, messageId, properties) trigger; the caller commits. Returns how many runs
    started. An event without a userId starts nothing."""
    journeys = [
        (journey, definition)
        for journey, definition in running_journeys(session, workspace_id, entry=EVENT_ENTRY)
        if isinstance(definition.entryNode, EventEntryNode)
    ]
    if not journeys:
        return 0
    wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in events:
        name, user_id, message_id = event.get("event"), event.get("userId"), event.get("messageId")
        if not (
            isinstance(name, str) and isinstance(user_id, str) and user_id and isinstance(message_id, str)
        ):
            continue
        properties = event.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        for journey, definition in journeys:
            entry = definition.entryNode
            assert isinstance(entry, EventEntryNode)
            if not event_matches(entry.event, name):
                continue
            key = event_key(entry, properties, message_id)
            if key is None:
                continue
            run_key = instance_key(workspace_id, user_id, key)
            row = _run_row(journey, definition, user_id, run_key, now)
            row.update(event=properties, triggering_message_id=message_id)
            wanted.setdefault((journey.id, user_id, run_key), row)
    for journey_id, user_id, run_key, live_key in _runs_with_keys(session, workspace_id, wanted):
        can_run_multiple = next(j.can_run_multiple for j, _ in journeys if j.id == journey_id)
        if live_key is not None or not can_run_multiple:
            wanted.pop((journey_id, user_id, run_key), None)
    return len(insert_new(session, JourneyRun.__table__, list(wanted.values())))  # type: ignore[arg-type]


def _runs_with_keys(
    session: Session, workspace_id: str, keys: Mapping[tuple[str, str, str], object]
) -> Iterator[tuple[str, str, str, str | None]]:
    """(journey, user, instance key, live key) of the runs, live or exited, that already used a key."""
    journey_ids = sorted({journey_id for journey_id, _, _ in keys})
    run_keys = sorted({run_key for _, _, run_key in keys})
    for start in range(0, len(run_keys), _CHUNK):
        rows = session.execute(
            select(
                JourneyRun.journey_id, JourneyRun.user_id, JourneyRun.instance_key, JourneyRun.live_key
            ).where(
                JourneyRun.workspace_id == workspace_id,
                JourneyRun.journey_id.in_(journey_ids),
                JourneyRun.instance_key.in_(run_keys[start : start + _CHUNK]),
            )
        )
        yield from rows


def _run_row(
    journey: Journey, definition: JourneyDefinition, user_id: str, run_key: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "workspace_id": journey.workspace_id,
        "journey_id": journey.id,
        "user_id": user_id,
        "instance_key": run_key,
        "live_key": run_key,
        "node_id": definition.entry_id,
        "state": RunState.ACTIVE,
        "due_at": now,
        "attempts": 0,
        "started_at": now,
        "event": None,
        "triggering_message_id": None,
    }


def _js_string(value: str | int | float) -> str:
    """The key's text as JavaScript's String() writes it (1.0 is "1")."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)
