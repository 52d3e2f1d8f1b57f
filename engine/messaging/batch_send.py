"""Sending one template to a list of users in one call, and a test send to one made-up user
(Dittofeed's `content/templates/batch-send` and `content/templates/test`, §6.1).

A batch send records one internal event per result (except retryable ones) so deliveries and analysis
see it. A messageId that already has a recorded result is not sent again: the earlier result is
answered instead, so a client retrying a batch after a timeout does not message anyone twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.event_writer import EventWriter
from engine.messaging.recipients import load_user_properties
from engine.messaging.send import (
    BAD_CONFIGURATION,
    FAILURE,
    SENT,
    SKIPPED,
    Recipient,
    SendOptions,
    SendResult,
    SendServices,
    prepare_message,
    result_row,
)
from engine.storage.event_store import EventStore
from engine.storage.models import utcnow
from engine.storage.resource_models import SubscriptionGroup

PREVIEW_USER_ID = "123-preview"
_RESULT_EVENTS = (SENT, FAILURE, BAD_CONFIGURATION, SKIPPED)


@dataclass(frozen=True)
class BatchUser:
    id: str
    properties: Mapping[str, Any]
    message_id: str | None = None
    context: Mapping[str, Any] | None = None


def _answer(user_id: str, message_id: str, result: SendResult) -> dict[str, Any]:
    answer: dict[str, Any] = {"userId": user_id, "messageId": message_id, "type": result.type}
    if result.type == "RetryableError":
        answer["error"] = {"message": result.error}
    elif result.type == "NonRetryableError":
        answer["error"] = {"type": result.event, "variant": result.variant}
    elif result.type == "Skipped":
        answer["reason"] = result.variant
    return answer


def _recorded_results(
    store: EventStore, writer: EventWriter, workspace_id: str, message_ids: Sequence[str]
) -> dict[str, SendResult]:
    if not message_ids:
        return {}
    # Waits only for results of these messages still on their way to the store, not for every event
    # acknowledged before (the previous batch's, still being stored while this one renders).
    writer.sync_messages(workspace_id, message_ids)
    # The cheap lookup path: hundreds of ids travel as one JSON text, which ClickHouse parses faster
    # than an Array(String) of as many elements.
    rows = store.select_json(
        "SELECT message_id, event, JSONExtractRaw(properties, 'variant') FROM internal_events"
        " WHERE workspace_id = {workspace:String}"
        " AND message_id IN JSONExtract({ids:String}, 'Array(String)')"
        " AND event IN {events:Array(String)}",
        {
            "workspace": workspace_id,
            "ids": json.dumps(list(message_ids), ensure_ascii=False),
            "events": list(_RESULT_EVENTS),
        },
        read_own_writes=False,
    )
    return {
        str(message_id): SendResult(str(event), json.loads(variant or "{}"))
        for message_id, event, variant in rows
    }


def batch_send(
    session: Session,
    services: SendServices,
    store: EventStore,
    writer: EventWriter,
    workspace_id: str,
    options: SendOptions,
    users: Sequence[BatchUser],
    *,
    context: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Send to each user (stored user properties overlaid by the supplied ones) and record the results.

    :raises Unavailable: the results could not be recorded (the sends happened; a retry with the same
        messageIds is answered from what was recorded before, or sent again if nothing was).
    """
    now = now or utcnow()
    plan = prepare_message(session, services, workspace_id, options)
    message_ids = [user.message_id or str(uuid.uuid4()) for user in users]
    recorded = _recorded_results(
        store, writer, workspace_id, [m for u, m in zip(users, message_ids, strict=True) if u.message_id]
    )
    user_ids = [user.id for user in users]
    stored = load_user_properties(session, workspace_id, user_ids)
    plan.load_subscriptions(session, user_ids)
    tags = {"templateId": options.template_id}
    recipients = [
        Recipient(user.id, {**stored.get(user.id, {}), **user.properties, "id": user.id}) for user in users
    ]
    pending: list[tuple[Recipient, str, Mapping[str, str]]] = [
        (r, m, {}) for r, m in zip(recipients, message_ids, strict=True) if m not in recorded
    ]
    results = dict(zip((m for _, m, _ in pending), plan.send_all(session, pending), strict=True))
    answers, rows = [], []
    for user, recipient, message_id in zip(users, recipients, message_ids, strict=True):
        if message_id in recorded:
            answers.append(_answer(user.id, message_id, recorded[message_id]))
            continue
        result = results[message_id]
        if result.type == "Skipped":
            # Upstream answers a skip here as retryable and records nothing (§6.1).
            reason = result.variant.get("type")
            result = SendResult(None, {}, error=f"message skipped: {reason}")
        answers.append(_answer(user.id, message_id, result))
        if result.event is not None:
            merged_context = {**(context or {}), **(user.context or {})} or None
            rows.append(
                result_row(
                    workspace_id,
                    recipient,
                    message_id,
                    result,
                    {"workspaceId": workspace_id, **tags, "messageId": message_id, "userId": user.id},
                    now,
                    context=merged_context,
                )
            )
    writer.accept(rows)
    return answers


def send_test_message(
    session: Session,
    services: SendServices,
    workspace_id: str,
    template_id: str,
    channel: str,
    user_properties: Mapping[str, Any],
    *,
    provider_override: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> SendResult:
    """Send the template's draft (or definition) once, as a preview, recording nothing (§6.1)."""
    group_id = session.scalar(
        select(SubscriptionGroup.id)
        .where(SubscriptionGroup.workspace_id == workspace_id, SubscriptionGroup.channel == channel)
        .order_by(SubscriptionGroup.created_at, SubscriptionGroup.id)
        .limit(1)
    )
    options = SendOptions(
        template_id=template_id,
        channel=channel,
        subscription_group_id=group_id,
        provider_override=provider_override,
        use_draft=True,
        is_preview=True,
    )
    plan = prepare_message(session, services, workspace_id, options)
    user_id = str(user_properties.get("id") or PREVIEW_USER_ID)
    recipient = Recipient(user_id, {**user_properties, "id": user_id})
    return plan.send(session, recipient, str(uuid.uuid4()), tags or {})
