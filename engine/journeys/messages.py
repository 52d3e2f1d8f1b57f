"""The message node (Dittofeed §7.3, §8.1): each run owes at most one message per message node, sent
exactly once through the send ledger (`engine.messaging.ledger`).

The ledger row of a (run, node) has the messageId `derive_message_id(workspace, "<runId>-<nodeId>")`
and the run as its source. It is inserted Pending if absent, claimed and committed, sent and settled and
committed, then recorded. A run that comes back to the node — after a crash, or after a transient
failure's backoff — finds the same row: a settled one is never sent again, a Pending one is sent when its
backoff is over.

`retryCount` is the number of attempts, as upstream hands it to Temporal (`maximumAttempts`; absent or
0 means 3). When the last one fails too, the send is recorded as failed and the journey records
`DFJourneyEarlyExit` and exits; a permanent failure or a skip exits unless the node has `skipOnFailure`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.events import EventRow
from engine.journeys.definition import EXIT, MessageNode
from engine.journeys.records import early_exit_row
from engine.messaging.ledger import (
    LeaseFence,
    RetryPolicy,
    WriteEvents,
    claim_sends,
    derive_message_id,
    record_settled,
    send_claimed,
)
from engine.messaging.send import MessagePlan, Recipient, SendOptions, SendServices, prepare_message
from engine.storage.inserts import insert_new
from engine.storage.journey_models import JourneyRun
from engine.storage.send_models import MessageSend, SendState

DEFAULT_ATTEMPTS = 3
RETRIES_EXHAUSTED = "RetriesExhausted"  # the provider type the ledger gives a send out of attempts


@dataclass(frozen=True)
class Visit:
    """A run standing at a message node. `stop_reason` says why it may not send (the journey is no
    longer Running, the workspace no longer Active): it then records an early exit instead."""

    run: JourneyRun
    node: MessageNode
    stop_reason: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Where the run goes next; `next_id` None: it stays at the node until `due_at` (a retry's backoff,
    or another worker's send lease)."""

    next_id: str | None
    due_at: datetime | None = None


def journey_message_id(run: JourneyRun, node: MessageNode) -> str:
    return derive_message_id(run.workspace_id, f"{run.id}-{node.id}")


def message_tags(run: JourneyRun, node: MessageNode) -> dict[str, str]:
    tags = {
        "workspaceId": run.workspace_id,
        "journeyId": run.journey_id,
        "nodeId": node.id,
        "runId": run.id,
        "templateId": node.variant.templateId,
        "channel": node.variant.type,
    }
    if run.triggering_message_id:
        tags["triggeringMessageId"] = run.triggering_message_id
    return tags


class JourneySends:
    """Sends the messages that runs at message nodes owe, in one worker's pass over a batch of runs.

    `commit` makes the session's changes durable (the runner writes its pending events first), `record`
    queues an event for that commit, and `recipient` tells who a run's user is (properties by name).
    """

    def __init__(
        self,
        session: Session,
        services: SendServices,
        write_events: WriteEvents,
        *,
        now: datetime,
        owner: str,
        policy: RetryPolicy,
        lease: timedelta,
        clock: Callable[[], datetime],
        commit: Callable[[], None],
        record: Callable[[EventRow], None],
        recipient: Callable[[JourneyRun], Recipient],
    ) -> None:
        self.session = session
        self.services = services
        self.write_events = write_events
        self.now = now
        self.owner = owner
        self.policy = policy
        self.lease = lease
        self.fence = LeaseFence(owner, lease, clock)
        self.commit = commit
        self.record = record
        self.recipient = recipient
        self._plans: dict[tuple[Any, ...], MessagePlan] = {}

    def visit(self, visits: Sequence[Visit]) -> dict[str, Outcome]:
        """Send what each visit owes (or stop it); run id -> where the run goes."""
        outcomes: dict[str, Outcome] = {}
        sending: list[Visit] = []
        for visit in visits:
            if visit.stop_reason is None:
                sending.append(visit)
                continue
            self._early_exit(visit, visit.stop_reason)
            outcomes[visit.run.id] = Outcome(EXIT)
        if not sending:
            return outcomes
        rows = self._claim(sending)
        self.commit()  # the claims hold from here: a crash leaves in-doubt rows to take over
        for visit in sending:
            row = rows[journey_message_id(visit.run, visit.node)]
            if row.state == SendState.SENDING and row.lease_owner == self.owner:
                self._send(visit, row)
                self.commit()  # one provider call at most is in doubt at any time
        record_settled(self.session, list(rows.values()), self.write_events, now=self.now)
        self.commit()
        for visit in sending:
            outcomes[visit.run.id] = self._outcome(visit, rows[journey_message_id(visit.run, visit.node)])
        return outcomes

    def _claim(self, visits: Sequence[Visit]) -> dict[str, MessageSend]:
        """Insert the ledger rows not owed yet, claim those that are due; message id -> row."""
        owed = [
            {
                "message_id": journey_message_id(visit.run, visit.node),
                "workspace_id": visit.run.workspace_id,
                "source_id": visit.run.id,
                "user_id": visit.run.user_id,
                "state": SendState.PENDING,
                "due_at": self.now,
                "attempts": 0,
                "updated_at": self.now,
            }
            for visit in visits
        ]
        insert_new(self.session, MessageSend.__table__, owed)  # type: ignore[arg-type]
        for visit in visits:
            claim_sends(self.session, visit.run.id, now=self.now, owner=self.owner, limit=1, lease=self.lease)
        ids = [row["message_id"] for row in owed]
        statement = (
            select(MessageSend)
            .where(MessageSend.message_id.in_(ids))
            .execution_options(populate_existing=True)
        )
        return {row.message_id: row for row in self.session.scalars(statement)}

    def _send(self, visit: Visit, row: MessageSend) -> None:
        node, run = visit.node, visit.run
        variant = node.variant
        options = SendOptions(
            template_id=variant.templateId,
            channel=variant.type,
            subscription_group_id=node.subscriptionGroupId,
            provider_override=getattr(variant, "providerOverride", None),
        )
        key = (run.workspace_id, options)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = prepare_message(self.session, self.services, run.workspace_id, options)
        policy = replace(self.policy, max_attempts=node.retryCount or DEFAULT_ATTEMPTS)
        send_claimed(
            self.session,
            plan,
            [(row, self.recipient(run))],
            message_tags(run, node),
            now=self.now,
            policy=policy,
            fence=self.fence,
        )
        run.attempts = row.attempts

    def _outcome(self, visit: Visit, row: MessageSend) -> Outcome:
        if row.state == SendState.SENT:
            return Outcome(visit.node.child)
        if row.state == SendState.PENDING:
            return Outcome(None, row.due_at)
        if row.state == SendState.SENDING:  # another worker's send, in flight until its lease ends
            return Outcome(None, row.lease_expires_at or self.now)
        provider = ((row.result or {}).get("variant") or {}).get("provider") or {}
        if provider.get("type") == RETRIES_EXHAUSTED:
            self._early_exit(visit, f"the message failed after {row.attempts} attempts")
            return Outcome(EXIT)
        return Outcome(visit.node.child if visit.node.skipOnFailure else EXIT)

    def _early_exit(self, visit: Visit, reason: str) -> None:
        run, node = visit.run, visit.node
        message_id = journey_message_id(run, node)
        tags = {**message_tags(run, node), "messageId": message_id, "userId": run.user_id}
        self.record(early_exit_row(run, message_id, tags, reason, self.now))
