"""A workspace with members, an email template and a way to run broadcasts, for execution tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.broadcasts.execution import BroadcastRunner
from engine.broadcasts.lifecycle import start_broadcast
from engine.events import EventRow
from engine.messaging.ledger import RetryPolicy
from engine.messaging.provider_settings import upsert_provider_config
from engine.messaging.providers.base import ProviderContext
from engine.messaging.send import SendServices
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.resource_models import MessageTemplate, Segment, SubscriptionGroup, UserProperty
from engine.storage.send_models import MessageSend
from engine.workspaces import create_workspace
from tests.support.provider_servers import RESEND_API_KEY

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
EMAIL_TEMPLATE = {
    "type": "Email",
    "from": "news@feedgate.test",
    "subject": "Hello {{ user.firstName }}",
    "body": "<p>Hi {{ user.firstName }}</p>",
}


@dataclass
class BroadcastWorld:
    sessions: sessionmaker[Session]
    workspace_id: str = ""
    segment_id: str = ""
    template_id: str = ""
    events: list[EventRow] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=10)
        self.services = SendServices(ProviderContext(self.http, self.endpoints), "http://feedgate.test")
        with self.sessions.begin() as session:
            workspace = create_workspace(session, "Broadcasting")
            self.workspace_id = workspace.id
            segment = Segment(
                workspace_id=workspace.id, name="members", definition={"entryNode": {}, "nodes": []}
            )
            template = MessageTemplate(workspace_id=workspace.id, name="hello", definition=EMAIL_TEMPLATE)
            session.add_all([segment, template])
            session.flush()
            self.segment_id, self.template_id = segment.id, template.id

    def close(self) -> None:
        self.services.providers.connections.close_all()
        self.http.close()

    def add_members(self, count: int, *, timezones: Sequence[str | None] = ()) -> list[str]:
        """Users `user-0000`… in the segment, each with an email, a first name and maybe a timezone."""
        user_ids = [f"user-{index:04d}" for index in range(count)]
        with self.sessions.begin() as session:
            property_ids = dict(
                session.execute(
                    select(UserProperty.name, UserProperty.id).where(
                        UserProperty.workspace_id == self.workspace_id
                    )
                ).all()
            )
            for index, user_id in enumerate(user_ids):
                session.add(
                    SegmentAssignment(
                        workspace_id=self.workspace_id,
                        segment_id=self.segment_id,
                        user_id=user_id,
                        in_segment=True,
                        assigned_at=T0,
                    )
                )
                values: dict[str, Any] = {"email": f"{user_id}@example.com", "firstName": f"U{index}"}
                if index < len(timezones) and timezones[index]:
                    values["timezone"] = timezones[index]
                for name, value in values.items():
                    session.add(
                        UserPropertyAssignment(
                            workspace_id=self.workspace_id,
                            user_property_id=property_ids[name],
                            user_id=user_id,
                            value=json.dumps(value),
                            assigned_at=T0,
                        )
                    )
        return user_ids

    def use_resend(self, url: str) -> None:
        """Send this workspace's email through a Resend stand-in at `url`."""
        self.endpoints["Resend"] = url
        with self.sessions.begin() as session:
            upsert_provider_config(
                session,
                self.workspace_id,
                "Email",
                {"type": "Resend", "apiKey": RESEND_API_KEY},
                set_default=True,
            )

    def use_smtp(self, port: int) -> None:
        """Send this workspace's email through the SMTP server on loopback `port`."""
        with self.sessions.begin() as session:
            upsert_provider_config(
                session,
                self.workspace_id,
                "Email",
                {"type": "Smtp", "host": "127.0.0.1", "port": str(port)},
                set_default=True,
            )

    def create_broadcast(
        self, name: str = "launch", *, scheduled_at: str | None = None, **config: Any
    ) -> str:
        with self.sessions.begin() as session:
            group_id = session.scalar(
                select(SubscriptionGroup.id).where(
                    SubscriptionGroup.workspace_id == self.workspace_id, SubscriptionGroup.channel == "Email"
                )
            )
            broadcast = Broadcast(
                workspace_id=self.workspace_id,
                name=name,
                segment_id=self.segment_id,
                message_template_id=self.template_id,
                subscription_group_id=group_id,
                config={"type": "V2", "message": {"type": "Email"}, **config},
                scheduled_at=scheduled_at,
            )
            session.add(broadcast)
            session.flush()
            return broadcast.id

    def start(self, broadcast_id: str, now: datetime = T0) -> BroadcastStatus:
        with self.sessions.begin() as session:
            return start_broadcast(session, self.workspace_id, broadcast_id, now=now).status

    def runner(self, owner: str = "worker-a", policy: RetryPolicy | None = None) -> BroadcastRunner:
        return BroadcastRunner(
            self.sessions,
            self.services,
            self.events.extend,
            clock=lambda: T0,
            owner=owner,
            policy=policy or RetryPolicy(),
        )

    def status(self, broadcast_id: str) -> BroadcastStatus:
        with self.sessions() as session:
            broadcast = session.get(Broadcast, broadcast_id)
            assert broadcast is not None
            return broadcast.status

    def sends(self, broadcast_id: str) -> dict[str, MessageSend]:
        """user id -> ledger row"""
        with self.sessions() as session:
            rows = session.scalars(select(MessageSend).where(MessageSend.source_id == broadcast_id))
            return {row.user_id: row for row in rows}

    def recorded(self, event: str = "DFInternalMessageSent") -> list[dict[str, Any]]:
        """The recorded internal events named `event`, as track messages."""
        messages = [json.loads(row.message_raw) for row in self.events]
        return [message for message in messages if message.get("event") == event]
