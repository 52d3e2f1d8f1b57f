"""Running broadcasts (Dittofeed §6.5 V2 execution) as a worker task that any number of workers share.

Per period, `BroadcastRunner.run_due`:

1. starts Scheduled broadcasts whose time has come;
2. loads the recipients of each newly Running broadcast: recomputes its segment, then writes one send
   ledger row per member, with a messageId derived from (user, broadcast) as upstream does, due at the
   member's local time when the broadcast is scheduled per timezone. The broadcast row is locked
   while the rows are written, so one worker does it; the messageIds make a repeat add nobody twice;
3. sends batches: a worker locks the broadcast row just long enough to claim a batch of its due sends
   and move the rate-limit gate (`next_batch_at`), then sends the batch through the send ledger
   (`engine.messaging.ledger`), so two workers send two batches of one broadcast at once;
4. finishes broadcasts with nothing left to send: Completed (V1: Triggered).

With `errorHandling: PauseOnError` a permanent failure pauses the broadcast. A template or provider
that cannot work at all fails the broadcast and cancels what it had not sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.broadcasts.schedule import first_moment, moment_in, parse_local, zone_or_none
from engine.messaging.ledger import (
    SEND_LEASE,
    LeaseFence,
    RetryPolicy,
    WriteEvents,
    claim_sends,
    derive_message_id,
    has_open_sends,
    record_settled,
    record_unrecorded,
    send_claimed,
)
from engine.messaging.recipients import load_user_properties
from engine.messaging.send import Recipient, SendOptions, SendServices, prepare_message
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.inserts import insert_new
from engine.storage.models import Workspace, WorkspaceStatus
from engine.storage.resource_models import MessageTemplate
from engine.storage.send_models import MessageSend, SendState

logger = logging.getLogger(__name__)

SENDING = (BroadcastStatus.RUNNING, BroadcastStatus.IN_PROGRESS)
DEFAULT_BATCH_SIZE = 100
Recompute = Callable[[str, str], object]  # (workspace id, segment id)


@dataclass
class BroadcastRunner:
    """The worker task. `recompute` brings a segment up to date before its members are read."""

    sessions: sessionmaker[Session]
    services: SendServices
    write_events: WriteEvents
    clock: Callable[[], datetime]
    owner: str
    recompute: Recompute | None = None
    policy: RetryPolicy = RetryPolicy()
    lease: timedelta = SEND_LEASE
    # One run_once sends for at most this long, so the worker stays responsive to stop requests.
    budget_seconds: float = 5.0
    name: str = "broadcasts"

    def run_once(self) -> None:
        self.run_due()

    def run_due(self, now: datetime | None = None) -> int:
        """Do the due work; returns how many sends were settled. With `now` (tests) the clock stands
        still at it."""
        moment = now or self.clock()
        self.start_scheduled(moment)
        self.load_recipients(moment)
        settled = 0
        deadline = time.monotonic() + self.budget_seconds
        while time.monotonic() < deadline:
            count = self.send_next_batch(now or self.clock())
            if count is None:
                break
            settled += count
        moment = now or self.clock()
        self.finish(moment)
        with self.sessions() as session:
            record_unrecorded(session, self.write_events, now=moment)
            session.commit()
        return settled

    def start_scheduled(self, now: datetime) -> None:
        with self.sessions() as session:
            for broadcast in session.scalars(
                select(Broadcast)
                .where(Broadcast.status == BroadcastStatus.SCHEDULED)
                .with_for_update(skip_locked=True)
            ):
                if _start_time(broadcast) <= now:
                    broadcast.status = BroadcastStatus.RUNNING
            session.commit()

    def load_recipients(self, now: datetime) -> None:
        """Write the ledger rows of every sending broadcast that has none yet."""
        passed: set[str] = set()  # taken by another worker meanwhile: not this call's to load
        while True:
            with self.sessions() as session:
                pending = session.execute(
                    select(Broadcast.id, Broadcast.workspace_id, Broadcast.segment_id)
                    .where(
                        Broadcast.status.in_(SENDING),
                        Broadcast.recipients_loaded_at.is_(None),
                        Broadcast.id.not_in(passed),
                    )
                    .limit(1)
                ).first()
            if pending is None:
                return
            broadcast_id, workspace_id, segment_id = pending
            if segment_id is not None and self.recompute is not None:
                # Before the row lock: on SQLite that lock is the database's one write lock, which the
                # computation's own transaction needs.
                self.recompute(workspace_id, segment_id)
            with self.sessions() as session:
                broadcast = session.scalar(
                    select(Broadcast)
                    .where(
                        Broadcast.id == broadcast_id,
                        Broadcast.status.in_(SENDING),
                        Broadcast.recipients_loaded_at.is_(None),
                    )
                    .with_for_update(skip_locked=True)
                )
                if broadcast is None:
                    passed.add(broadcast_id)
                    continue
                count = _write_recipients(session, broadcast, now)
                broadcast.recipients_loaded_at = now
                session.commit()
                logger.info("broadcast %s: %d recipients", broadcast.id, count)

    def send_next_batch(self, now: datetime) -> int | None:
        """Claim and send one batch of one broadcast; None when no broadcast has a batch due."""
        with self.sessions() as session:
            claimed = self._claim_batch(session, now)
            if claimed is None:
                return None
            broadcast, rows = claimed
            session.commit()
            return self._send_batch(session, broadcast, rows, now)

    def _claim_batch(self, session: Session, now: datetime) -> tuple[Broadcast, list[MessageSend]] | None:
        ready = session.scalars(
            select(Broadcast.id).where(
                Broadcast.status.in_(SENDING),
                Broadcast.recipients_loaded_at.is_not(None),
                or_(Broadcast.next_batch_at.is_(None), Broadcast.next_batch_at <= now),
            )
        ).all()
        for broadcast_id in ready:
            broadcast = session.scalar(
                select(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status.in_(SENDING))
                .with_for_update(skip_locked=True)
            )
            if broadcast is None:
                continue
            config = broadcast.config or {}
            batch_size = int(config.get("batchSize") or DEFAULT_BATCH_SIZE)
            rows = claim_sends(
                session, broadcast.id, now=now, owner=self.owner, limit=batch_size, lease=self.lease
            )
            if not rows:
                session.rollback()
                continue
            rate = config.get("rateLimit")
            if rate:
                start = max(now, broadcast.next_batch_at or now)
                broadcast.next_batch_at = start + timedelta(seconds=len(rows) / float(rate))
            return broadcast, rows
        return None

    def _send_batch(
        self, session: Session, broadcast: Broadcast, rows: list[MessageSend], now: datetime
    ) -> int:
        options = send_options(session, broadcast)
        workspace = session.get(Workspace, broadcast.workspace_id)
        if workspace is None or workspace.status != WorkspaceStatus.ACTIVE:
            # A paused workspace sends nothing: the batch waits for it, as upstream's workflow would.
            _release(session, rows, now + timedelta(minutes=1))
            session.commit()
            return 0
        plan = prepare_message(session, self.services, broadcast.workspace_id, options)
        user_ids = [row.user_id for row in rows]
        properties = load_user_properties(session, broadcast.workspace_id, user_ids)
        recipients = [
            (row, Recipient(row.user_id, properties.get(row.user_id, {"id": row.user_id}))) for row in rows
        ]
        settled = send_claimed(
            session,
            plan,
            recipients,
            broadcast_tags(broadcast, options),
            now=now,
            policy=self.policy,
            fence=LeaseFence(self.owner, self.lease, self.clock),
        )
        if plan.problem is not None:
            _fail(session, broadcast.id, str(plan.problem.variant.get("type")))
        elif _pauses_on_error(broadcast) and any(result.type == "NonRetryableError" for _, result in settled):
            session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast.id, Broadcast.status == BroadcastStatus.RUNNING)
                .values(status=BroadcastStatus.PAUSED, error="paused on a failed send")
            )
        session.commit()
        record_settled(session, [row for row, _ in settled], self.write_events, now=now)
        session.commit()
        return len(settled)

    def finish(self, now: datetime) -> None:
        """Complete the sending broadcasts that have nothing left to send."""
        with self.sessions() as session:
            for broadcast in session.scalars(
                select(Broadcast)
                .where(Broadcast.status.in_(SENDING), Broadcast.recipients_loaded_at.is_not(None))
                .with_for_update(skip_locked=True)
            ):
                if not has_open_sends(session, broadcast.id):
                    done = (
                        BroadcastStatus.TRIGGERED if broadcast.version == "V1" else BroadcastStatus.COMPLETED
                    )
                    broadcast.status = done
                    logger.info("broadcast %s %s", broadcast.id, done.value.lower())
            session.commit()


def _pauses_on_error(broadcast: Broadcast) -> bool:
    return (broadcast.config or {}).get("errorHandling") == "PauseOnError"


def _start_time(broadcast: Broadcast) -> datetime:
    config = broadcast.config or {}
    local = parse_local(broadcast.scheduled_at or "")
    if config.get("useIndividualTimezone"):
        return first_moment(local)
    return moment_in(local, zone_or_none(config.get("defaultTimezone")))


def broadcast_tags(broadcast: Broadcast, options: SendOptions) -> dict[str, str]:
    """The tags of each message of the broadcast (and of its delivery events)."""
    return {
        "workspaceId": broadcast.workspace_id,
        "broadcastId": broadcast.id,
        "templateId": options.template_id,
        "channel": options.channel,
    }


def send_options(session: Session, broadcast: Broadcast) -> SendOptions:
    """How the broadcast's messages are sent: its template, channel, group and provider override."""
    config = broadcast.config or {}
    message: dict[str, Any] = config.get("message") or {}
    channel = message.get("type")
    if channel is None:  # V1: the template says
        definition = session.scalar(
            select(MessageTemplate.definition).where(
                MessageTemplate.workspace_id == broadcast.workspace_id,
                MessageTemplate.id == broadcast.message_template_id,
            )
        )
        channel = (definition or {}).get("type", "Email")
    return SendOptions(
        template_id=broadcast.message_template_id or "",
        channel=str(channel),
        subscription_group_id=broadcast.subscription_group_id,
        provider_override=message.get("providerOverride"),
    )


def _write_recipients(session: Session, broadcast: Broadcast, now: datetime) -> int:
    members = session.scalars(
        select(SegmentAssignment.user_id)
        .where(
            SegmentAssignment.workspace_id == broadcast.workspace_id,
            SegmentAssignment.segment_id == broadcast.segment_id,
            SegmentAssignment.in_segment.is_(True),
        )
        .order_by(SegmentAssignment.user_id)
    ).all()
    due = _due_times(session, broadcast, members, now)
    rows = [
        {
            "message_id": derive_message_id(broadcast.workspace_id, f"{user_id}-{broadcast.id}"),
            "workspace_id": broadcast.workspace_id,
            "source_id": broadcast.id,
            "user_id": user_id,
            "state": SendState.PENDING,
            "due_at": due.get(user_id, now),
            "attempts": 0,
            "updated_at": now,
        }
        for user_id in members
    ]
    # A repeat after a crash finds the rows it wrote already there.
    insert_new(session, MessageSend.__table__, rows)  # type: ignore[arg-type]
    return len(members)


def _due_times(
    session: Session, broadcast: Broadcast, user_ids: Sequence[str], now: datetime
) -> dict[str, datetime]:
    """Each recipient's send time when the broadcast is scheduled per timezone (else all are due now)."""
    config = broadcast.config or {}
    if not broadcast.scheduled_at or not config.get("useIndividualTimezone"):
        return {}
    local = parse_local(broadcast.scheduled_at)
    default = zone_or_none(config.get("defaultTimezone"))
    properties = load_user_properties(session, broadcast.workspace_id, user_ids)
    return {
        user_id: max(
            now, moment_in(local, zone_or_none(properties.get(user_id, {}).get("timezone")) or default)
        )
        for user_id in user_ids
    }


def _release(session: Session, rows: Sequence[MessageSend], due_at: datetime) -> None:
    for row in rows:
        row.state = SendState.PENDING
        row.due_at = due_at
        row.lease_owner = None
        row.lease_expires_at = None
        row.attempts -= 1


def _fail(session: Session, broadcast_id: str, reason: str) -> None:
    session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status.in_(SENDING))
        .values(status=BroadcastStatus.FAILED, error=reason)
    )
    session.execute(
        update(MessageSend)
        .where(MessageSend.source_id == broadcast_id, MessageSend.state == SendState.PENDING)
        .values(state=SendState.CANCELLED)
    )
