"""The send ledger records each settled send's event once, however many workers hold the row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.broadcasts.execution import broadcast_tags, send_options
from engine.broadcasts.lifecycle import load_broadcast
from engine.events import EventRow
from engine.messaging.ledger import RetryPolicy, claim_sends, record_settled, send_claimed
from engine.messaging.recipients import load_user_properties
from engine.messaging.send import Recipient, prepare_message
from engine.storage.send_models import MessageSend, SendState
from tests.engine.broadcasts.world import T0, BroadcastWorld


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> Iterator[BroadcastWorld]:
    world = BroadcastWorld(sessions)
    yield world
    world.close()


def settle_unrecorded(world: BroadcastWorld, members: int) -> str:
    """A broadcast whose sends went out and were settled, with their events not yet recorded."""
    world.add_members(members)
    broadcast_id = world.create_broadcast(batchSize=members)
    world.start(broadcast_id)
    runner = world.runner()
    runner.load_recipients(T0)
    with world.sessions() as session:
        rows = claim_sends(session, broadcast_id, now=T0, owner="worker-a", limit=members)
        session.commit()
        broadcast = load_broadcast(session, world.workspace_id, broadcast_id)
        options = send_options(session, broadcast)
        plan = prepare_message(session, runner.services, world.workspace_id, options)
        users = load_user_properties(session, world.workspace_id, [row.user_id for row in rows])
        claimed = [(row, Recipient(row.user_id, users[row.user_id])) for row in rows]
        send_claimed(session, plan, claimed, broadcast_tags(broadcast, options), now=T0, policy=RetryPolicy())
        session.commit()
    return broadcast_id


def load_rows(session: Session, source_id: str) -> list[MessageSend]:
    rows = list(session.scalars(select(MessageSend).where(MessageSend.source_id == source_id)))
    session.commit()  # the objects stay loaded (expire_on_commit is off): a worker's stale copies
    return rows


def test_a_worker_with_a_stale_copy_does_not_record_a_send_again(world: BroadcastWorld) -> None:
    broadcast_id = settle_unrecorded(world, 3)
    first: list[EventRow] = []
    second: list[EventRow] = []
    with world.sessions() as worker_a, world.sessions() as worker_b:
        rows_a, rows_b = load_rows(worker_a, broadcast_id), load_rows(worker_b, broadcast_id)
        assert {row.state for row in rows_b} == {SendState.SENT}

        assert record_settled(worker_a, rows_a, first.extend, now=T0) == 3
        worker_a.commit()
        assert record_settled(worker_b, rows_b, second.extend, now=T0) == 0
        worker_b.commit()

    assert sorted(row.message_id for row in first) == sorted(row.message_id for row in rows_a)
    assert second == []


@pytest.mark.parametrize("sql_url", ["postgres"], indirect=True)
def test_a_send_being_recorded_by_one_worker_is_left_to_it(world: BroadcastWorld) -> None:
    broadcast_id = settle_unrecorded(world, 3)
    first: list[EventRow] = []
    second: list[EventRow] = []
    with world.sessions() as worker_a, world.sessions() as worker_b:
        rows_a, rows_b = load_rows(worker_a, broadcast_id), load_rows(worker_b, broadcast_id)
        # A regression that waits for worker A's locks fails here instead of hanging the test.
        worker_b.execute(text("SET lock_timeout = '5s'"))

        assert record_settled(worker_a, rows_a, first.extend, now=T0) == 3  # not committed yet
        assert record_settled(worker_b, rows_b, second.extend, now=T0) == 0
        worker_a.commit()
        assert record_settled(worker_b, rows_b, second.extend, now=T0) == 0

    assert len(first) == 3
    assert second == []
