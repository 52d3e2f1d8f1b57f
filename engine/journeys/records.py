"""The internal events a journey run records on its user (Dittofeed §7.3, §8.1): `DFJourneyNodeProcessed`
after each node it passes, and `DFJourneyEarlyExit` when a message node ends the journey early.

Their messageIds are derived from the run and the node, so recording one again after a crash stores it
once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.events import EventRow, build_rows
from engine.journeys.definition import (
    EventEntryNode,
    ExitNode,
    JourneyDefinition,
    SegmentEntryNode,
)
from engine.journeys.entry import event_key
from engine.messaging.ledger import derive_message_id
from engine.storage.journey_models import JourneyRun

NODE_PROCESSED = "DFJourneyNodeProcessed"
EARLY_EXIT = "DFJourneyEarlyExit"


def node_id_of(node: Any) -> str:
    """How events name a node: the entry and exit by their type, the others by their id."""
    if isinstance(node, SegmentEntryNode | EventEntryNode | ExitNode):
        return str(node.type)
    return str(node.id)


def node_processed_row(run: JourneyRun, definition: JourneyDefinition, node: Any, now: datetime) -> EventRow:
    node_id = node_id_of(node)
    properties: dict[str, Any] = {
        "journeyStartedAt": _iso(run.started_at),
        "journeyId": run.journey_id,
        "type": node.type,
        "nodeId": node_id,
    }
    entry = definition.entryNode
    if isinstance(entry, EventEntryNode):
        key = event_key(entry, run.event or {}, run.triggering_message_id or "")
        if key is not None:
            properties["eventKey"] = key.value
            if entry.key:
                properties["eventKeyName"] = entry.key
    message_id = derive_message_id(run.workspace_id, f"{run.id}-{node_id}-processed")
    return _track_row(run, message_id, NODE_PROCESSED, properties, now)


def early_exit_row(
    run: JourneyRun, message_id: str, tags: Mapping[str, str], reason: str, now: datetime
) -> EventRow:
    """`message_id` is the send's: the early exit stands in for the message that was not sent."""
    return _track_row(run, message_id, EARLY_EXIT, {**tags, "message": reason}, now)


def _track_row(
    run: JourneyRun, message_id: str, event: str, properties: dict[str, Any], now: datetime
) -> EventRow:
    message = {
        "userId": run.user_id,
        "messageId": message_id,
        "event": event,
        "properties": properties,
        "timestamp": _iso(now),
    }
    (row,) = build_rows(run.workspace_id, "track", message, now)
    return row


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
