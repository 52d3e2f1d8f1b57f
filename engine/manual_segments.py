"""Manual segments (Dittofeed §6.2): membership set imperatively, as `DFManualSegmentUpdate` track events
the compute loop reads.

A manual segment's entry node carries a `version`. Its members are the users whose latest update
event for that segment and version says `inSegment: 1`. Appending writes events at the current
version; replacing moves the segment to a new version and writes events for the new members only, so
everyone else drops out; clearing is a replace with nobody.

Events are written before the version bump is committed, in the caller's transaction: if the write
fails the segment keeps its old version and its old members.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.compute.run import last_period, version_of
from engine.definitions import is_manual
from engine.errors import InvalidInput
from engine.events import EventRow, build_rows
from engine.resources import epoch_ms, iso_ms
from engine.segments import find_segment
from engine.storage.event_store import EventStore
from engine.storage.models import utcnow
from engine.storage.resource_models import Segment

MANUAL_SEGMENT_EVENT = "DFManualSegmentUpdate"
# The `context.source` of the identify events a CSV upload writes (upstream's DataSources.ManualSegment).
MANUAL_SEGMENT_SOURCE = "DfManualSegment"

WriteEvents = Callable[[Sequence[EventRow]], object]
"""Stores rows durably before returning (the app's EventWriter.write)."""


class NotManualSegment(InvalidInput):
    def __init__(self) -> None:
        super().__init__("segment must have a manual entry node", field="segmentId")


def find_manual_segment(
    session: Session, workspace_id: str, segment_id: str, *, lock: bool = False
) -> Segment:
    """:raises NotFound: no such segment. :raises NotManualSegment: its entry node is not Manual."""
    segment = find_segment(session, workspace_id, segment_id, lock=lock)
    if not is_manual(segment.definition):
        raise NotManualSegment()
    return segment


def update_manual_segment(
    session: Session,
    write_events: WriteEvents,
    workspace_id: str,
    segment_id: str,
    user_ids: Sequence[str],
    *,
    append: bool = False,
    now: datetime | None = None,
    extra_rows: Sequence[EventRow] = (),
) -> Segment:
    """Add `user_ids` to the segment (`append`) or make them its only members.

    `extra_rows` are written in the same store write (a CSV upload's identify events).
    :raises NotFound: no such segment. :raises NotManualSegment: it is not a manual segment.
    """
    now = now or utcnow()
    # Locked so that concurrent updates of one segment run one after another (Postgres; SQLite
    # serialises writers anyway).
    segment = find_manual_segment(session, workspace_id, segment_id, lock=True)
    entry: dict[str, Any] = segment.definition["entryNode"]
    version = entry.get("version", 0)
    if not append:
        version = next_version(version, now)
        segment.definition = {**segment.definition, "entryNode": {**entry, "version": version}}
        segment.definition_updated_at = now
        session.flush()
    rows = [*extra_rows]
    for user_id in dict.fromkeys(user_ids):
        rows += build_rows(
            workspace_id, "track", _update_event(workspace_id, segment.id, version, user_id, now), now
        )
    write_events(rows)
    return segment


def clear_manual_segment(
    session: Session,
    write_events: WriteEvents,
    workspace_id: str,
    segment_id: str,
    *,
    now: datetime | None = None,
) -> Segment:
    """Empty the segment: a replace with no members."""
    return update_manual_segment(session, write_events, workspace_id, segment_id, [], now=now)


def last_computed_at(
    session: Session, store: EventStore, workspace_id: str, segment_id: str
) -> datetime | None:
    """When the compute loop last brought the segment's current version up to date; None until then.

    :raises NotFound: no such segment.
    """
    segment = find_segment(session, workspace_id, segment_id)
    return last_period(store, workspace_id, segment.id, version_of(segment.definition_updated_at))


def next_version(current: Any, now: datetime) -> int:
    """Upstream's new version is the time in whole seconds; two replaces within one second would share
    it, and the first one's members would survive the second, so the version always moves forward."""
    seconds = epoch_ms(now) // 1000
    if isinstance(current, int | float) and not isinstance(current, bool) and current >= seconds:
        return int(current) + 1
    return seconds


def manual_update_message_id(workspace_id: str, segment_id: str, version: Any, user_id: str) -> str:
    """Upstream's messageId of an update event: uuidv5 in the workspace's namespace, so writing the
    same update twice stores it once."""
    name = f"manual-update-{segment_id}-{_js_number(version)}-{user_id}"
    return str(uuid.uuid5(uuid.UUID(workspace_id), name))


def identify_rows(
    workspace_id: str, user_traits: Sequence[tuple[str, dict[str, str]]], now: datetime
) -> list[EventRow]:
    """One identify event per uploaded user, its other CSV columns as traits."""
    rows: list[EventRow] = []
    for user_id, traits in user_traits:
        message = {
            "userId": user_id,
            "messageId": str(uuid.uuid4()),
            "timestamp": iso_ms(now),
            "traits": traits,
            "context": {"source": MANUAL_SEGMENT_SOURCE},
        }
        rows += build_rows(workspace_id, "identify", message, now)
    return rows


def _update_event(
    workspace_id: str, segment_id: str, version: Any, user_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "userId": user_id,
        "messageId": manual_update_message_id(workspace_id, segment_id, version, user_id),
        "timestamp": iso_ms(now),
        "event": MANUAL_SEGMENT_EVENT,
        "properties": {"segmentId": segment_id, "version": version, "inSegment": 1},
    }


def _js_number(value: Any) -> str:
    # A JavaScript template string writes 3.0 as "3".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
