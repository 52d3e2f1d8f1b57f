"""Subscription state (§5.3, §7.5): gating by group type and the user's latest choice, changes that
gating sees at once and that a compute cycle leaves standing, and finding a link's user by hash.

Runs on every pairing of SQL database (SQLite, Postgres) and ClickHouse (chdb, HTTP); users and their
`email` property come from real identify events and the real compute loop.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.bootstrap import SUBSCRIPTION_SECRET_NAME
from engine.compute.loop import compute_workspace
from engine.errors import NotAuthenticated, NotFound
from engine.event_writer import EventWriter
from engine.events import build_rows
from engine.messaging.links import subscription_hash
from engine.messaging.subscription_groups import SubscriptionGroupUpsert, upsert_subscription_group
from engine.messaging.subscriptions import (
    UnknownSubscriptionGroup,
    find_user_by_hash,
    is_subscribed,
    subscription_action,
    update_user_subscriptions,
    user_subscriptions,
)
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.event_store import EventStore
from engine.storage.models import Secret
from engine.storage.resource_models import ChannelType, Segment, SubscriptionGroup, SubscriptionGroupType
from engine.workspaces import create_workspace


class Shop:
    """A workspace with its bootstrap groups (Email and SMS, opt-out) plus an opt-in newsletter."""

    def __init__(self, sessions: sessionmaker[Session], store: EventStore, writer: EventWriter, name: str):
        self.sessions, self.store, self.writer = sessions, store, writer
        with sessions.begin() as session:
            workspace = create_workspace(session, name)
            self.id = workspace.id
            newsletter = upsert_subscription_group(
                session,
                self.id,
                SubscriptionGroupUpsert(ChannelType.EMAIL, SubscriptionGroupType.OPT_IN, name="Newsletter"),
            )
            self.groups = {
                group.channel.value if group.type == SubscriptionGroupType.OPT_OUT else group.name: group.id
                for group in session.scalars(
                    select(SubscriptionGroup).where(SubscriptionGroup.workspace_id == self.id)
                )
            }
            assert newsletter.id == self.groups["Newsletter"]
            secret = session.scalars(
                select(Secret.value).where(
                    Secret.workspace_id == self.id, Secret.name == SUBSCRIPTION_SECRET_NAME
                )
            ).one()
            assert secret is not None
            self.secret = secret

    def identify(self, user: str, **traits: Any) -> None:
        now = datetime.now(UTC)
        self.writer.write(
            build_rows(
                self.id, "identify", {"userId": user, "messageId": str(uuid.uuid4()), "traits": traits}, now
            )
        )

    def compute(self) -> None:
        # Writes return once stored, so everything written so far is at or before now.
        summary = compute_workspace(self.sessions, self.store, self.id, now=datetime.now(UTC))
        assert summary.failed == 0

    def subscribed(self, key: str, user: str) -> bool:
        with self.sessions() as session:
            group = session.get_one(SubscriptionGroup, self.groups[key])
            return is_subscribed(session, self.id, group, user)

    def action(self, key: str, user: str) -> str | None:
        with self.sessions() as session:
            return subscription_action(session, self.id, self.groups[key], user)

    def change(self, user: str, changes: dict[str, bool]) -> None:
        with self.sessions.begin() as session:
            update_user_subscriptions(session, self.writer.write, self.store, self.id, user, changes)

    def hash_for(self, user: str, identifier: str, key: str = "email") -> str:
        return subscription_hash(
            workspace_id=self.id, user_id=user, identifier=identifier, identifier_key=key, secret=self.secret
        )

    def find(self, identifier: str, user_hash: str, key: str = "email") -> str:
        with self.sessions() as session:
            return find_user_by_hash(
                session, self.id, identifier=identifier, identifier_key=key, user_hash=user_hash
            )

    def change_events(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self.store.query(
            "SELECT user_id, properties FROM user_events_v2 WHERE workspace_id = {w:String}"
            " AND event = 'DFSubscriptionChange' ORDER BY processing_time, message_id",
            {"w": self.id},
        )
        return [(user, json.loads(properties)) for user, properties in rows]

    def clickhouse_membership(self, segment_name: str, user: str) -> bool | None:
        with self.sessions() as session:
            segment_id = session.scalars(
                select(Segment.id).where(Segment.workspace_id == self.id, Segment.name == segment_name)
            ).one()
        rows = self.store.query(
            "SELECT argMax(segment_value, assigned_at) FROM computed_property_assignments_v2"
            " WHERE workspace_id = {w:String} AND computed_property_id = {s:String} AND user_id = {u:String}"
            " GROUP BY user_id",
            {"w": self.id, "s": segment_id, "u": user},
        )
        return bool(rows[0][0]) if rows else None


@pytest.fixture
def writer(event_store: EventStore) -> Iterator[EventWriter]:
    writer = EventWriter(event_store)
    yield writer
    writer.close()


@pytest.fixture
def shop(sessions: sessionmaker[Session], event_store: EventStore, writer: EventWriter) -> Shop:
    shop = Shop(sessions, event_store, writer, "Shop")
    shop.identify("ann", email="ann@example.com")
    shop.identify("bob", email="bob@example.com", phone=15550001)
    shop.identify("zoë", email="zoë+news@exämple.com")
    shop.compute()
    return shop


def test_without_a_choice_opt_out_groups_send_and_opt_in_groups_do_not(shop: Shop) -> None:
    assert shop.action("Newsletter", "nobody") is None
    assert shop.subscribed("Email", "nobody") is True
    assert shop.subscribed("Newsletter", "nobody") is False
    # Computed from events: a user with events is a member of the opt-out group's main segment.
    assert shop.action("Email", "ann") == "Subscribe"


def test_a_change_is_gated_at_once_and_survives_the_next_compute_cycle(shop: Shop) -> None:
    shop.change("ann", {shop.groups["Email"]: False, shop.groups["Newsletter"]: True})

    assert (shop.action("Email", "ann"), shop.subscribed("Email", "ann")) == ("Unsubscribe", False)
    assert (shop.action("Newsletter", "ann"), shop.subscribed("Newsletter", "ann")) == ("Subscribe", True)
    email = shop.groups["Email"]
    assert shop.clickhouse_membership(f"subscriptionGroup-{email}", "ann") is False
    assert shop.clickhouse_membership(f"subscriptionGroup-unsubscribed-{email}", "ann") is True
    assert sorted(shop.change_events(), key=lambda e: e[1]["subscriptionId"]) == sorted(
        [
            ("ann", {"subscriptionId": email, "action": "Unsubscribe"}),
            ("ann", {"subscriptionId": shop.groups["Newsletter"], "action": "Subscribe"}),
        ],
        key=lambda e: e[1]["subscriptionId"],
    )

    shop.compute()
    assert shop.subscribed("Email", "ann") is False and shop.subscribed("Newsletter", "ann") is True
    assert shop.subscribed("Email", "bob") is True

    shop.change("ann", {email: True})
    assert shop.subscribed("Email", "ann") is True
    shop.compute()
    assert shop.subscribed("Email", "ann") is True
    assert shop.clickhouse_membership(f"subscriptionGroup-unsubscribed-{email}", "ann") is False


def test_groups_not_named_keep_their_state(shop: Shop) -> None:
    shop.change("ann", {shop.groups["Newsletter"]: True})
    shop.change("ann", {shop.groups["Sms"]: False})
    with shop.sessions() as session:
        states = {state.name: state.subscribed for state in user_subscriptions(session, shop.id, "ann")}
    assert states == {"Newsletter": True, "Shop - Email": True, "Shop - SMS": False}


def test_an_unknown_or_foreign_group_writes_nothing(
    shop: Shop, sessions: sessionmaker[Session], event_store: EventStore, writer: EventWriter
) -> None:
    other = Shop(sessions, event_store, writer, "Other")
    for group_id in (other.groups["Email"], "not-a-uuid"):
        with pytest.raises(UnknownSubscriptionGroup) as raised:
            shop.change("ann", {shop.groups["Newsletter"]: True, group_id: False})
        assert group_id in raised.value.message
    assert shop.change_events() == [] and other.change_events() == []
    assert shop.action("Newsletter", "ann") is None
    with sessions() as session:
        assert (
            session.scalars(select(SegmentAssignment).where(SegmentAssignment.workspace_id == other.id)).all()
            == []
        )
        with pytest.raises(NotFound):
            foreign = session.get_one(SubscriptionGroup, other.groups["Email"])
            is_subscribed(session, shop.id, foreign, "ann")


def test_a_hash_finds_exactly_the_user_it_was_made_for(shop: Shop) -> None:
    assert shop.find("ann@example.com", shop.hash_for("ann", "ann@example.com")) == "ann"
    assert shop.find("zoë+news@exämple.com", shop.hash_for("zoë", "zoë+news@exämple.com")) == "zoë"
    # A phone number stored as a JSON number identifies its user by its digits.
    assert shop.find("15550001", shop.hash_for("bob", "15550001", "phone"), "phone") == "bob"


@pytest.mark.parametrize(
    ("identifier", "user", "made_with"),
    [
        ("bob@example.com", "ann", "ann@example.com"),  # ann's hash presented with bob's address
        ("ann@example.com", "bob", "ann@example.com"),  # a hash made for another user id
        ("ann@example.com", "ann", "ANN@example.com"),
        ("nobody@example.com", "nobody", "nobody@example.com"),  # no user has that address
    ],
)
def test_a_forged_or_mismatched_hash_is_refused(
    shop: Shop, identifier: str, user: str, made_with: str
) -> None:
    with pytest.raises(NotAuthenticated, match="Invalid user hash."):
        shop.find(identifier, shop.hash_for(user, made_with))


def test_a_hash_is_bound_to_its_workspace_and_well_formed(
    shop: Shop, sessions: sessionmaker[Session], event_store: EventStore, writer: EventWriter
) -> None:
    other = Shop(sessions, event_store, writer, "Other")
    other.identify("ann", email="ann@example.com")
    other.compute()
    with pytest.raises(NotAuthenticated):
        shop.find("ann@example.com", other.hash_for("ann", "ann@example.com"))
    for garbled in ("", "zz", shop.hash_for("ann", "ann@example.com").upper(), "\ud800" * 64):
        with pytest.raises(NotAuthenticated):
            shop.find("ann@example.com", garbled)
    with pytest.raises(NotAuthenticated):
        shop.find("\ud800", shop.hash_for("ann", "ann@example.com"))
