"""Broadcasts as resources, on SQLite and Postgres: the V2 upsert and its typed refusals, one channel
across template, group and config, Draft-only edits, the wire forms with the send ledger's progress,
newest-first listing, and `execute_broadcast` building one V1 broadcast per name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.broadcasts import lifecycle
from engine.broadcasts.resources import (
    BroadcastUpsert,
    archive_broadcast,
    broadcast_resource,
    list_broadcasts,
    rename_broadcast,
    upsert_broadcast_v2,
)
from engine.broadcasts.v1 import execute_broadcast
from engine.errors import InvalidInput, NotFound
from engine.storage.broadcast_models import Broadcast
from engine.storage.journey_models import Journey
from engine.storage.resource_models import (
    ChannelType,
    MessageTemplate,
    ResourceType,
    Segment,
    SubscriptionGroup,
)
from engine.storage.send_models import MessageSend, SendState
from engine.workspaces import create_workspace

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
EMAIL = {"type": "Email", "from": "hello@acme.test", "subject": "Sale", "body": "<p>Sale!</p>"}
SMS = {"type": "Sms", "body": "Sale!"}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _workspace(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        return create_workspace(session, f"w-{uuid.uuid4()}").id


def _add(sessions: sessionmaker[Session], row: Any) -> str:
    with sessions.begin() as session:
        session.add(row)
        session.flush()
        return str(row.id)


def _template(sessions: sessionmaker[Session], workspace_id: str, definition: dict[str, Any]) -> str:
    return _add(
        sessions, MessageTemplate(workspace_id=workspace_id, name=str(uuid.uuid4()), definition=definition)
    )


def _segment(sessions: sessionmaker[Session], workspace_id: str) -> str:
    return _add(sessions, Segment(workspace_id=workspace_id, name=str(uuid.uuid4()), definition=TRAIT))


def _group(sessions: sessionmaker[Session], workspace_id: str, channel: str) -> str:
    with sessions() as session:
        return str(
            session.scalars(
                select(SubscriptionGroup.id)
                .where(SubscriptionGroup.workspace_id == workspace_id, SubscriptionGroup.channel == channel)
                .order_by(SubscriptionGroup.created_at)
            ).first()
        )


def _upsert(
    sessions: sessionmaker[Session], workspace_id: str, at: datetime = T0, **fields: Any
) -> dict[str, Any]:
    with sessions.begin() as session:
        broadcast = upsert_broadcast_v2(session, workspace_id, BroadcastUpsert(**fields), now=at)
        return broadcast_resource(session, broadcast)


def _refusal(sessions: sessionmaker[Session], workspace_id: str, **fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        upsert_broadcast_v2(session, workspace_id, BroadcastUpsert(**fields), now=T0)
    return refused.value


def test_create_update_and_clear(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    segment, template = _segment(sessions, workspace_id), _template(sessions, workspace_id, SMS)
    created = _upsert(sessions, workspace_id, name="Sale", segment_id=segment, message_template_id=template)
    assert created == {
        "id": created["id"],
        "workspaceId": workspace_id,
        "name": "Sale",
        "status": "Draft",
        "config": {"type": "V2", "message": {"type": "Sms"}},
        "segmentId": segment,
        "messageTemplateId": template,
        "subscriptionGroupId": _group(sessions, workspace_id, "Sms"),
        "archived": False,
        "createdAt": _ms(T0),
        "updatedAt": _ms(T0),
        "version": "V2",
        "progress": {"total": 0, "sent": 0, "failed": 0, "skipped": 0, "pending": 0, "cancelled": 0},
    }
    later = T0 + timedelta(minutes=1)
    updated = _upsert(
        sessions, workspace_id, later, name="Sale", segment_id=None, scheduled_at="2026-04-01 08:00"
    )
    assert (updated["id"], updated["updatedAt"], updated["scheduledAt"]) == (
        created["id"],
        _ms(later),
        "2026-04-01 08:00",
    )
    assert "segmentId" not in updated and updated["messageTemplateId"] == template


def test_typed_refusals_carry_upstreams_body(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    other_workspace = _workspace(sessions)
    theirs = _upsert(sessions, other_workspace, name="Theirs")

    assert _refusal(sessions, workspace_id).body["type"] == "MissingRequiredFields"
    assert _refusal(sessions, workspace_id, id="nope", name="x").body["type"] == "IdError"
    assert _refusal(sessions, workspace_id, id=theirs["id"], name="x").body["type"] == "IdError"
    _upsert(sessions, workspace_id, name="Taken")
    other = _upsert(sessions, workspace_id, name="Other")
    assert (
        _refusal(sessions, workspace_id, id=other["id"], name="Taken").body["type"]
        == "UniqueConstraintViolation"
    )

    foreign_segment = _segment(sessions, other_workspace)
    refused = _refusal(sessions, workspace_id, name="x", segment_id=foreign_segment)
    assert (refused.body["type"], refused.field) == ("ConstraintViolation", "segmentId")


def test_channels_must_agree_with_what_is_stored(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    email_template = _template(sessions, workspace_id, EMAIL)
    broadcast = _upsert(sessions, workspace_id, name="Email", message_template_id=email_template)
    refused = _refusal(
        sessions,
        workspace_id,
        id=broadcast["id"],
        subscription_group_id=_group(sessions, workspace_id, "Sms"),
    )
    assert refused.body["type"] == "ConstraintViolation"
    assert refused.field == "messageTemplateId, subscriptionGroupId, config/message/type"


def test_only_a_draft_changes_what_it_sends(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    broadcast = _upsert(
        sessions,
        workspace_id,
        name="Go",
        segment_id=_segment(sessions, workspace_id),
        message_template_id=_template(sessions, workspace_id, EMAIL),
    )
    with sessions.begin() as session:
        lifecycle.start_broadcast(session, workspace_id, broadcast["id"], now=T0)
    refused = _refusal(sessions, workspace_id, id=broadcast["id"], segment_id=None)
    assert refused.field == "segmentId" and "Running" in refused.message
    assert _upsert(sessions, workspace_id, id=broadcast["id"], name="Gone")["name"] == "Gone"


def test_progress_counts_the_send_ledger(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    broadcast = _upsert(sessions, workspace_id, name="Counted")
    states = [SendState.SENT] * 3 + [
        SendState.FAILED,
        SendState.SKIPPED,
        SendState.PENDING,
        SendState.SENDING,
    ]
    with sessions.begin() as session:
        session.add_all(
            MessageSend(
                message_id=str(uuid.uuid4()),
                workspace_id=workspace_id,
                source_id=broadcast["id"],
                user_id=f"u{index}",
                state=state,
            )
            for index, state in enumerate([*states, SendState.CANCELLED])
        )
    with sessions() as session:
        progress = broadcast_resource(session, session.get_one(Broadcast, broadcast["id"]))["progress"]
    assert progress == {"total": 8, "sent": 3, "failed": 1, "skipped": 1, "pending": 2, "cancelled": 1}


def test_list_rename_and_archive(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    first = _upsert(sessions, workspace_id, T0, name="first")
    second = _upsert(sessions, workspace_id, T0 + timedelta(seconds=1), name="second")
    with sessions.begin() as session:
        assert [b.id for b in list_broadcasts(session, workspace_id)] == [second["id"], first["id"]]
        assert list_broadcasts(session, _workspace_in(session)) == []
        assert rename_broadcast(session, workspace_id, first["id"], "renamed", now=T0).name == "renamed"
        assert archive_broadcast(session, workspace_id, first["id"], True, now=T0).archived is True
        with pytest.raises(NotFound):
            rename_broadcast(session, workspace_id, str(uuid.uuid4()), "x", now=T0)


def _workspace_in(session: Session) -> str:
    return create_workspace(session, f"w-{uuid.uuid4()}").id


def test_execute_builds_one_v1_broadcast_per_name(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    with sessions.begin() as session:
        broadcast_id = execute_broadcast(session, workspace_id, "Launch", TRAIT, SMS, None, now=T0)
    assert broadcast_id == str(uuid.uuid5(uuid.UUID(workspace_id), "Launch"))
    with sessions.begin() as session:
        again = execute_broadcast(
            session, workspace_id, "Launch", TRAIT, EMAIL, None, now=T0 + timedelta(hours=1)
        )
    assert again == broadcast_id

    with sessions() as session:
        broadcast = session.get_one(Broadcast, broadcast_id)
        resource = broadcast_resource(session, broadcast)
        template = session.get_one(MessageTemplate, broadcast.message_template_id)
        segment = session.get_one(Segment, broadcast.segment_id)
        journey = session.get_one(Journey, broadcast.journey_id)
        journeys = session.scalars(select(Journey).where(Journey.workspace_id == workspace_id)).all()
    assert (resource["version"], resource["status"], resource["triggeredAt"]) == ("V1", "InProgress", _ms(T0))
    assert (template.definition, template.resource_type) == (SMS, ResourceType.INTERNAL)
    assert (segment.definition, segment.resource_type, segment.status.value) == (
        TRAIT,
        ResourceType.INTERNAL,
        "NotStarted",
    )
    assert len(journeys) == 1 and journey.status.value == "Broadcast"
    assert journey.definition is not None
    assert journey.definition["nodes"][0]["variant"] == {"type": "Sms", "templateId": template.id}
    assert journey.definition["nodes"][0]["subscriptionGroupId"] == _group(
        sessions, workspace_id, ChannelType.SMS
    )
