"""The V2 broadcast status machine (Dittofeed §6.5): start, pause, resume and cancel.

Draft→Running|Scheduled|Cancelled; Scheduled→Running|Cancelled; Running→Paused|Completed|Failed|
Cancelled; Paused→Running|Failed|Cancelled; Completed, Cancelled and Failed are final. These calls only
move the status; the worker (`engine.broadcasts.execution`) acts on it: it loads the recipients of a
Running broadcast, sends its batches, and finishes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.send_models import MessageSend, SendState

FINAL = (BroadcastStatus.COMPLETED, BroadcastStatus.CANCELLED, BroadcastStatus.FAILED)


def load_broadcast(
    session: Session, workspace_id: str, broadcast_id: str, *, lock: bool = False
) -> Broadcast:
    statement = select(Broadcast).where(Broadcast.workspace_id == workspace_id, Broadcast.id == broadcast_id)
    if lock:
        statement = statement.with_for_update()
    broadcast = session.scalar(statement)
    if broadcast is None:
        raise NotFound("broadcast not found")
    return broadcast


def start_broadcast(session: Session, workspace_id: str, broadcast_id: str, *, now: datetime) -> Broadcast:
    """Start a Draft broadcast: Scheduled when it has `scheduledAt`, else Running. Starting one that has
    already started is not an error (as upstream); a broadcast that cannot run says why.

    :raises NotFound: no such broadcast in the workspace.
    :raises InvalidInput: it lacks a segment or a template, or is scheduled without a timezone.
    """
    broadcast = load_broadcast(session, workspace_id, broadcast_id, lock=True)
    if broadcast.version != "V2":
        raise InvalidInput("only V2 broadcasts are started this way", field="body/broadcastId")
    if broadcast.status != BroadcastStatus.DRAFT:
        return broadcast
    if broadcast.message_template_id is None:
        raise InvalidInput("the broadcast has no message template", field="body/broadcastId")
    if broadcast.segment_id is None:
        raise InvalidInput("the broadcast has no segment", field="body/broadcastId")
    config = broadcast.config or {}
    rate_limit = config.get("rateLimit")
    if rate_limit is not None and rate_limit <= 0:
        # Upstream's workflow cancels a broadcast whose rate limit is not positive.
        broadcast.status = BroadcastStatus.CANCELLED
        broadcast.error = "rateLimit must be greater than 0"
        return broadcast
    if broadcast.scheduled_at:
        if not config.get("defaultTimezone"):
            raise InvalidInput("a scheduled broadcast needs config.defaultTimezone", field="body/broadcastId")
        broadcast.status = BroadcastStatus.SCHEDULED
    else:
        broadcast.status = BroadcastStatus.RUNNING
    broadcast.triggered_at = now
    return broadcast


def pause_broadcast(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
    """Running → Paused: no new batch starts until it is resumed."""
    broadcast = load_broadcast(session, workspace_id, broadcast_id, lock=True)
    if broadcast.status == BroadcastStatus.RUNNING:
        broadcast.status = BroadcastStatus.PAUSED
    return broadcast


def resume_broadcast(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
    """Paused → Running."""
    broadcast = load_broadcast(session, workspace_id, broadcast_id, lock=True)
    if broadcast.status == BroadcastStatus.PAUSED:
        broadcast.status = BroadcastStatus.RUNNING
        broadcast.error = None
    return broadcast


def cancel_broadcast(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
    """Any unfinished broadcast → Cancelled; its unsent messages are cancelled with it (a batch already
    being sent finishes)."""
    broadcast = load_broadcast(session, workspace_id, broadcast_id, lock=True)
    if broadcast.status in FINAL:
        return broadcast
    broadcast.status = BroadcastStatus.CANCELLED
    session.execute(
        update(MessageSend)
        .where(MessageSend.source_id == broadcast.id, MessageSend.state == SendState.PENDING)
        .values(state=SendState.CANCELLED)
    )
    return broadcast


def trigger_v1_broadcast(
    session: Session, workspace_id: str, broadcast_id: str, *, now: datetime
) -> Broadcast:
    """A V1 broadcast NotStarted → InProgress (Dittofeed's `broadcasts/trigger`); the worker sends it
    like a Running V2 broadcast and sets it Triggered when done."""
    broadcast = load_broadcast(session, workspace_id, broadcast_id, lock=True)
    if broadcast.version != "V1":
        raise InvalidInput("only V1 broadcasts are triggered", field="body/id")
    if broadcast.status == BroadcastStatus.NOT_STARTED:
        broadcast.status = BroadcastStatus.IN_PROGRESS
        broadcast.triggered_at = now
    return broadcast
