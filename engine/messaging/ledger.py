"""Exactly-once sends for broadcasts and journeys, over the send ledger (`MessageSend` rows).

A send goes through four steps, each durable before the next:

1. claim: the row is committed as Sending under a worker's lease;
2. send: the provider is called with the row's messageId;
3. settle: the result is committed on the row (Sent, Failed, Skipped, or Pending again with a backoff
   for a transient failure that has attempts left);
4. record: the result's internal event is written to ClickHouse and the row marked recorded.

A worker killed after 3 leaves an unrecorded row, which `record_unrecorded` writes later (the event's
messageId is the send's, so writing it twice stores it once). A worker killed between 1 and 3 leaves a
Sending row whose lease expires: it is claimed again and sent again under the same messageId, which
providers with idempotency keys (Resend, the webhook channel, Test) answer without a second message.
For the others that window is one provider call long; it cannot be closed without their help.

A live worker whose batch outlasts its lease (a slow provider) must not send what another worker has
taken over meanwhile: with a `LeaseFence`, the sender renews its leases before it sends (at most every
quarter lease, in one UPDATE of the rows it still holds, committed) and skips rows it no longer holds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from engine.events import EventRow
from engine.messaging.send import FAILURE, PARALLEL_SENDS, MessagePlan, Recipient, SendResult, result_row
from engine.storage.send_models import FINAL_STATES, MessageSend, SendState

logger = logging.getLogger(__name__)

WriteEvents = Callable[[Sequence[EventRow]], object]
# A claimed batch must be settled within this long, or another worker takes it over.
SEND_LEASE = timedelta(minutes=5)
# Settled rows left unrecorded this long are presumed abandoned by their worker.
RECORD_GRACE = timedelta(minutes=1)
_STATE_BY_TYPE = {
    "Success": SendState.SENT,
    "Skipped": SendState.SKIPPED,
    "NonRetryableError": SendState.FAILED,
}


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures are retried after `base_seconds`, doubling up to `cap_seconds`, until
    `max_attempts` sends were tried; then the send fails for good."""

    max_attempts: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class LeaseFence:
    """Who holds the claimed rows, for how long each renewal lasts, and by which clock."""

    owner: str
    lease: timedelta
    clock: Callable[[], datetime]


def renew_leases(session: Session, message_ids: Sequence[str], fence: LeaseFence) -> set[str]:
    """Extend the leases `fence.owner` still holds among `message_ids`; the ids it still holds. The
    caller commits, which is what makes the renewal hold."""
    if not message_ids:
        return set()
    renewed = session.execute(
        update(MessageSend)
        .where(
            MessageSend.message_id.in_(message_ids),
            MessageSend.state == SendState.SENDING,
            MessageSend.lease_owner == fence.owner,
        )
        .values(lease_expires_at=fence.clock() + fence.lease)
        .returning(MessageSend.message_id),
        execution_options={"synchronize_session": False},
    )
    return set(renewed.scalars())


def derive_message_id(workspace_id: str, name: str) -> str:
    """A messageId that is the same every time the same thing is owed (upstream's uuidv5 scheme)."""
    try:
        namespace = uuid.UUID(workspace_id)
    except ValueError:
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, workspace_id)
    return str(uuid.uuid5(namespace, name))


def claim_sends(
    session: Session,
    source_id: str,
    *,
    now: datetime,
    owner: str,
    limit: int,
    lease: timedelta = SEND_LEASE,
) -> list[MessageSend]:
    """Claim up to `limit` due sends of `source_id` for `owner`: in-doubt ones (Sending, lease
    expired) first, then Pending ones by due time. Rows another worker is claiming are skipped. The
    caller commits, which is what makes the claim hold."""
    claimed: list[MessageSend] = []
    for condition in (
        (MessageSend.state == SendState.SENDING) & (MessageSend.lease_expires_at < now),
        (MessageSend.state == SendState.PENDING) & (MessageSend.due_at <= now),
    ):
        if len(claimed) >= limit:
            break
        statement = (
            select(MessageSend)
            .where(MessageSend.source_id == source_id, condition)
            .order_by(MessageSend.due_at, MessageSend.message_id)
            .limit(limit - len(claimed))
            .with_for_update(skip_locked=True)
        )
        claimed += session.scalars(statement)
    for row in claimed:
        if row.state == SendState.SENDING:
            logger.warning("send %s of %s was in doubt; sending it again", row.message_id, source_id)
        row.state = SendState.SENDING
        row.lease_owner = owner
        row.lease_expires_at = now + lease
        row.attempts += 1
    return claimed


def send_claimed(
    session: Session,
    plan: MessagePlan,
    claimed: Sequence[tuple[MessageSend, Recipient]],
    tags: Mapping[str, str],
    *,
    now: datetime,
    policy: RetryPolicy,
    fence: LeaseFence | None = None,
) -> list[tuple[MessageSend, SendResult]]:
    """Send each claimed row and settle it on the session (the caller commits, then calls
    `record_settled`). Rows already settled are not sent again; with a `fence`, neither are rows
    whose lease another worker has taken over (renewing commits the session)."""
    plan.load_subscriptions(session, [recipient.user_id for _, recipient in claimed])
    settled = []
    held: set[str] = set()
    renewed_at: datetime | None = None
    unsettled = [(row, recipient) for row, recipient in claimed if row.state not in FINAL_STATES]
    # A round of sends in flight at once; the fence is checked between rounds, so a round lasts
    # about as long as one send did when they went one at a time.
    for start in range(0, len(unsettled), PARALLEL_SENDS):
        round_ = unsettled[start : start + PARALLEL_SENDS]
        if fence is not None:
            moment = fence.clock()
            if renewed_at is None or moment - renewed_at >= fence.lease / 4:
                sending = [r.message_id for r, _ in claimed if r.state == SendState.SENDING]
                held = renew_leases(session, sending, fence)
                session.commit()
                renewed_at = moment
            for row, _ in round_:
                if row.message_id not in held:
                    logger.warning("send %s was taken over after its lease ran out", row.message_id)
            round_ = [(row, recipient) for row, recipient in round_ if row.message_id in held]
        jobs = [
            (recipient, row.message_id, {**tags, "messageId": row.message_id, "userId": recipient.user_id})
            for row, recipient in round_
        ]
        results = plan.send_all(session, jobs)
        for (row, _), (_, _, send_tags), result in zip(round_, jobs, results, strict=True):
            settle_send(row, result, send_tags, now=now, policy=policy)
            settled.append((row, result))
    return settled


def settle_send(
    row: MessageSend, result: SendResult, tags: Mapping[str, str], *, now: datetime, policy: RetryPolicy
) -> None:
    """Put `result` on the row: a final state with the event to record, or Pending again for a retry."""
    row.lease_owner = None
    row.lease_expires_at = None
    if result.event is None and row.attempts < policy.max_attempts:
        row.state = SendState.PENDING
        row.due_at = now + policy.delay(row.attempts)
        row.result = {"error": result.error}
        return
    if result.event is None:
        channel = str(tags.get("channel") or "")
        variant = {"type": channel, "provider": {"type": "RetriesExhausted", "message": result.error}}
        result = SendResult(FAILURE, variant)
    row.state = _STATE_BY_TYPE[result.type]
    row.result_event = result.event
    row.result = {"tags": dict(tags), "variant": result.variant}
    row.recorded_at = None
    row.updated_at = now


def record_settled(
    session: Session, rows: Sequence[MessageSend], write_events: WriteEvents, *, now: datetime
) -> int:
    """Write the internal events of settled, unrecorded rows, then mark them recorded (the caller
    commits). Returns how many were recorded.

    Two workers can hold the same settled row (a journey run taken over while its first worker was
    still in its batch): the rows are locked and read again first, so only one of them writes."""
    ids = [row.message_id for row in rows if row.result_event is not None and row.recorded_at is None]
    if not ids:
        return 0
    return _record(session, select(MessageSend).where(MessageSend.message_id.in_(ids)), write_events, now)


def record_unrecorded(
    session: Session, write_events: WriteEvents, *, now: datetime, limit: int = 1000
) -> int:
    """Record the settled sends a killed worker left unrecorded (the caller commits)."""
    abandoned = (
        select(MessageSend)
        .where(MessageSend.updated_at < now - RECORD_GRACE)
        .order_by(MessageSend.updated_at)
        .limit(limit)
    )
    return _record(session, abandoned, write_events, now)


def _record(session: Session, rows: Select[MessageSend], write_events: WriteEvents, now: datetime) -> int:
    """Lock the settled, unrecorded rows among `rows` (skipping those another worker holds), write
    their events, mark them recorded."""
    unrecorded = list(
        session.scalars(
            rows.where(MessageSend.recorded_at.is_(None), MessageSend.result_event.is_not(None))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    if not unrecorded:
        return 0
    write_events([_event_row(row, now) for row in unrecorded])
    session.execute(
        update(MessageSend)
        .where(MessageSend.message_id.in_([row.message_id for row in unrecorded]))
        .values(recorded_at=now),
        execution_options={"synchronize_session": False},
    )
    return len(unrecorded)


def count_states(session: Session, source_id: str) -> dict[SendState, int]:
    rows = session.execute(
        select(MessageSend.state, func.count())
        .where(MessageSend.source_id == source_id)
        .group_by(MessageSend.state)
    )
    return {SendState(state): count for state, count in rows}


def has_open_sends(session: Session, source_id: str) -> bool:
    """Whether any send of `source_id` is still owed (Pending or Sending)."""
    open_states = or_(MessageSend.state == SendState.PENDING, MessageSend.state == SendState.SENDING)
    return (
        session.scalar(
            select(MessageSend.message_id).where(MessageSend.source_id == source_id, open_states).limit(1)
        )
        is not None
    )


def _event_row(row: MessageSend, now: datetime) -> EventRow:
    assert row.result_event is not None and row.result is not None
    result = SendResult(row.result_event, row.result.get("variant") or {})
    tags: Mapping[str, Any] = row.result.get("tags") or {}
    return result_row(
        row.workspace_id, Recipient(row.user_id, {}), row.message_id, result, tags, row.updated_at or now
    )
