"""Running a broadcast: every member messaged exactly once, on schedule, within its rate limit, through
pauses, provider failures and a worker that dies holding a batch."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.broadcasts.execution import broadcast_tags, send_options
from engine.broadcasts.lifecycle import cancel_broadcast, load_broadcast, pause_broadcast, resume_broadcast
from engine.messaging.ledger import RetryPolicy, claim_sends, send_claimed
from engine.messaging.recipients import load_user_properties
from engine.messaging.send import PARALLEL_SENDS, Recipient, prepare_message
from engine.storage.assignment_models import UserPropertyAssignment
from engine.storage.broadcast_models import BroadcastStatus
from engine.storage.resource_models import MessageTemplate, UserProperty
from engine.storage.send_models import SendState
from tests.engine.broadcasts.world import T0, BroadcastWorld
from tests.support.flaky_resend import FlakyResend
from tests.support.smtp_sink import running_smtp_sink


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> Iterator[BroadcastWorld]:
    world = BroadcastWorld(sessions)
    yield world
    world.close()


@pytest.fixture
def resend() -> Iterator[FlakyResend]:
    server = FlakyResend().start()
    yield server
    server.stop()


def test_every_member_gets_one_message_and_the_broadcast_completes(world: BroadcastWorld) -> None:
    members = world.add_members(250)
    broadcast_id = world.create_broadcast()
    assert world.start(broadcast_id) == BroadcastStatus.RUNNING
    runner = world.runner()

    assert runner.run_due(T0) == 250
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    sends = world.sends(broadcast_id)
    assert sorted(sends) == members
    assert {row.state for row in sends.values()} == {SendState.SENT}
    recorded = world.recorded()
    assert sorted(event["userId"] for event in recorded) == members
    assert {event["messageId"] for event in recorded} == {row.message_id for row in sends.values()}
    assert {event["properties"]["broadcastId"] for event in recorded} == {broadcast_id}
    assert recorded[0]["properties"]["variant"]["subject"].startswith("Hello U")

    assert runner.run_due(T0 + timedelta(hours=1)) == 0
    assert len(world.recorded()) == 250


def test_the_segment_is_recomputed_in_its_own_transaction_before_members_are_read(
    world: BroadcastWorld,
) -> None:
    broadcast_id = world.create_broadcast()
    world.start(broadcast_id)
    recomputed: list[tuple[str, str]] = []

    def recompute(workspace_id: str, segment_id: str) -> None:
        # Like the compute loop, the membership is written in a transaction of its own, which on
        # SQLite needs the database's write lock.
        recomputed.append((workspace_id, segment_id))
        world.add_members(3)

    runner = world.runner()
    runner.recompute = recompute

    assert runner.run_due(T0) == 3
    assert recomputed == [(world.workspace_id, world.segment_id)]
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED


def test_message_ids_are_derived_from_user_and_broadcast(world: BroadcastWorld) -> None:
    world.add_members(3)
    first, second = world.create_broadcast("first"), world.create_broadcast("second")
    for broadcast_id in (first, second):
        world.start(broadcast_id)
    world.runner().run_due(T0)
    first_ids = {row.message_id for row in world.sends(first).values()}
    second_ids = {row.message_id for row in world.sends(second).values()}
    assert len(first_ids) == 3 and not first_ids & second_ids


def test_a_scheduled_broadcast_waits_for_its_local_time(world: BroadcastWorld) -> None:
    world.add_members(5)
    # 10:00 in Paris on 22 November is 09:00 UTC... an hour after T0 is 10:00 UTC = 11:00 Paris.
    broadcast_id = world.create_broadcast(scheduled_at="2026-11-22T11:00", defaultTimezone="Europe/Paris")
    assert world.start(broadcast_id) == BroadcastStatus.SCHEDULED
    runner = world.runner()

    assert runner.run_due(T0 + timedelta(minutes=59)) == 0
    assert world.status(broadcast_id) == BroadcastStatus.SCHEDULED
    assert runner.run_due(T0 + timedelta(hours=1)) == 5
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED


def test_individual_timezones_send_at_each_recipients_local_time(world: BroadcastWorld) -> None:
    tokyo, new_york, unknown = world.add_members(3, timezones=["Asia/Tokyo", "America/New_York", None])
    broadcast_id = world.create_broadcast(
        scheduled_at="2026-11-23T08:00", defaultTimezone="UTC", useIndividualTimezone=True
    )
    world.start(broadcast_id)
    runner = world.runner()

    # 08:00 in Tokyo (UTC+9) is 23:00 UTC on the 22nd; New York (UTC-5) 13:00 UTC on the 23rd.
    runner.run_due(datetime_utc("2026-11-22T23:00"))
    assert _sent_users(world, broadcast_id) == {tokyo}
    runner.run_due(datetime_utc("2026-11-23T08:00"))
    assert _sent_users(world, broadcast_id) == {tokyo, unknown}
    runner.run_due(datetime_utc("2026-11-23T12:59"))
    assert world.status(broadcast_id) == BroadcastStatus.RUNNING
    runner.run_due(datetime_utc("2026-11-23T13:00"))
    assert _sent_users(world, broadcast_id) == {tokyo, unknown, new_york}
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED


def test_the_rate_limit_spaces_batches_out(world: BroadcastWorld) -> None:
    world.add_members(20)
    broadcast_id = world.create_broadcast(rateLimit=5, batchSize=5)
    world.start(broadcast_id)
    runner = world.runner()

    # Five messages at five a second: the next batch may start a second later.
    assert runner.run_due(T0) == 5
    assert runner.run_due(T0 + timedelta(milliseconds=999)) == 0
    assert runner.run_due(T0 + timedelta(seconds=1)) == 5
    assert runner.run_due(T0 + timedelta(seconds=10)) == 5
    assert runner.run_due(T0 + timedelta(seconds=10)) == 0
    assert runner.run_due(T0 + timedelta(seconds=11)) == 5
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED


def test_pause_holds_the_remaining_batches_until_resumed(world: BroadcastWorld) -> None:
    world.add_members(10)
    broadcast_id = world.create_broadcast(rateLimit=5, batchSize=5)
    world.start(broadcast_id)
    runner = world.runner()
    assert runner.run_due(T0) == 5
    with world.sessions.begin() as session:
        pause_broadcast(session, world.workspace_id, broadcast_id)

    assert runner.run_due(T0 + timedelta(minutes=5)) == 0
    assert world.status(broadcast_id) == BroadcastStatus.PAUSED
    with world.sessions.begin() as session:
        resume_broadcast(session, world.workspace_id, broadcast_id)
    assert runner.run_due(T0 + timedelta(minutes=6)) == 5
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED


def test_cancel_stops_the_broadcast_and_cancels_what_was_not_sent(world: BroadcastWorld) -> None:
    world.add_members(10)
    broadcast_id = world.create_broadcast(rateLimit=5, batchSize=5)
    world.start(broadcast_id)
    runner = world.runner()
    runner.run_due(T0)
    with world.sessions.begin() as session:
        cancel_broadcast(session, world.workspace_id, broadcast_id)

    assert runner.run_due(T0 + timedelta(minutes=5)) == 0
    assert world.status(broadcast_id) == BroadcastStatus.CANCELLED
    assert Counter(row.state for row in world.sends(broadcast_id).values()) == {
        SendState.SENT: 5,
        SendState.CANCELLED: 5,
    }


def test_transient_failures_are_retried_with_backoff_then_sent_once(world: BroadcastWorld) -> None:
    server = FlakyResend(failure_rate=0.5, seed=3).start()
    try:
        world.use_resend(server.url)
        members = world.add_members(40)
        broadcast_id = world.create_broadcast()
        world.start(broadcast_id)
        runner = world.runner(policy=RetryPolicy(max_attempts=30, base_seconds=1.0, cap_seconds=8.0))
        now = T0
        while world.status(broadcast_id) == BroadcastStatus.RUNNING:
            runner.run_due(now)
            now += timedelta(seconds=10)
            assert now < T0 + timedelta(hours=1)
        assert server.failed > 0
        assert server.delivered == Counter({f"{member}@example.com": 1 for member in members})
        assert max(row.attempts for row in world.sends(broadcast_id).values()) > 1
        assert sorted(event["userId"] for event in world.recorded()) == members
    finally:
        server.stop()


def test_a_broadcast_keeps_several_smtp_sends_in_flight_and_sends_each_member_once(
    world: BroadcastWorld,
) -> None:
    with running_smtp_sink() as sink:
        sink.data_delay = 0.2  # a server that takes its time to accept each message
        world.use_smtp(sink.port)
        members = world.add_members(10)
        broadcast_id = world.create_broadcast()
        world.start(broadcast_id)
        world.runner().run_due(T0)

        assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
        assert 1 < sink.most_in_flight <= PARALLEL_SENDS
        assert sorted(r.rcpt_tos[0] for r in sink.received) == [f"{m}@example.com" for m in members]
        assert sorted(event["userId"] for event in world.recorded()) == members


def test_a_retry_waits_for_its_backoff(world: BroadcastWorld) -> None:
    server = FlakyResend(failure_rate=1.0).start()
    try:
        world.use_resend(server.url)
        (member,) = world.add_members(1)
        broadcast_id = world.create_broadcast()
        world.start(broadcast_id)
        runner = world.runner(policy=RetryPolicy(max_attempts=3, base_seconds=60.0))
        runner.run_due(T0)
        assert world.sends(broadcast_id)[member].due_at == T0 + timedelta(seconds=60)
        runner.run_due(T0 + timedelta(seconds=59))
        assert server.requests == 1
        runner.run_due(T0 + timedelta(seconds=60))
        assert world.sends(broadcast_id)[member].due_at == T0 + timedelta(seconds=180)
        runner.run_due(T0 + timedelta(seconds=180))

        # Out of attempts: a clear failure, recorded, and the broadcast is done.
        row = world.sends(broadcast_id)[member]
        assert (row.state, row.attempts, server.requests) == (SendState.FAILED, 3, 3)
        (failure,) = world.recorded("DFMessageFailure")
        assert failure["properties"]["variant"]["provider"]["type"] == "RetriesExhausted"
        assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    finally:
        server.stop()


def test_pause_on_error_pauses_at_a_permanent_failure(world: BroadcastWorld, resend: FlakyResend) -> None:
    world.use_resend(resend.url)
    world.add_members(3)
    broadcast_id = world.create_broadcast(errorHandling="PauseOnError")
    _break_email_of(world, "user-0001")
    world.start(broadcast_id)
    world.runner().run_due(T0)

    assert world.status(broadcast_id) == BroadcastStatus.PAUSED
    assert world.sends(broadcast_id)["user-0001"].state == SendState.FAILED


def test_skip_on_error_carries_on_past_a_permanent_failure(
    world: BroadcastWorld, resend: FlakyResend
) -> None:
    world.use_resend(resend.url)
    world.add_members(3)
    broadcast_id = world.create_broadcast(errorHandling="SkipOnError")
    _break_email_of(world, "user-0001")
    world.start(broadcast_id)
    world.runner().run_due(T0)

    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    assert sum(resend.delivered.values()) == 2


def test_a_missing_template_fails_the_broadcast(world: BroadcastWorld) -> None:
    world.add_members(3)
    broadcast_id = world.create_broadcast(batchSize=1)
    world.start(broadcast_id)
    with world.sessions.begin() as session:
        session.execute(
            update(MessageTemplate).where(MessageTemplate.id == world.template_id).values(definition=None)
        )
    world.runner().run_due(T0)

    assert world.status(broadcast_id) == BroadcastStatus.FAILED
    assert Counter(row.state for row in world.sends(broadcast_id).values()) == {
        SendState.FAILED: 1,
        SendState.CANCELLED: 2,
    }


def test_a_dead_workers_batch_is_taken_over_without_sending_twice(
    world: BroadcastWorld, resend: FlakyResend
) -> None:
    world.use_resend(resend.url)
    members = world.add_members(10)
    broadcast_id = world.create_broadcast(batchSize=10)
    world.start(broadcast_id)
    dead = world.runner("worker-dead")
    dead.load_recipients(T0)
    # The dead worker claimed the whole batch and got four messages out before it died, unsettled.
    with world.sessions() as session:
        rows = claim_sends(session, broadcast_id, now=T0, owner="worker-dead", limit=10)
        session.commit()
        broadcast = load_broadcast(session, world.workspace_id, broadcast_id)
        options = send_options(session, broadcast)
        plan = prepare_message(session, dead.services, world.workspace_id, options)
        users = load_user_properties(session, world.workspace_id, [row.user_id for row in rows[:4]])
        claimed = [(row, Recipient(row.user_id, users[row.user_id])) for row in rows[:4]]
        send_claimed(session, plan, claimed, broadcast_tags(broadcast, options), now=T0, policy=RetryPolicy())
        session.rollback()
    assert resend.total_delivered() == 4

    survivor = world.runner("worker-b")
    assert survivor.run_due(T0 + timedelta(minutes=1)) == 0  # the lease still holds
    survivor.run_due(T0 + timedelta(minutes=6))

    assert resend.delivered == Counter({f"{member}@example.com": 1 for member in members})
    assert (resend.replayed, resend.requests) == (4, 14), resend
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    assert sorted(event["userId"] for event in world.recorded()) == members


def test_two_workers_share_a_broadcast_and_send_each_message_once(world: BroadcastWorld) -> None:
    members = world.add_members(400)
    broadcast_id = world.create_broadcast(batchSize=20)
    world.start(broadcast_id)
    runners = [world.runner("worker-a"), world.runner("worker-b")]
    runners[0].load_recipients(T0)
    threads = [threading.Thread(target=runner.run_due, args=(T0,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sends = world.sends(broadcast_id)
    assert {row.state for row in sends.values()} == {SendState.SENT}
    assert {row.attempts for row in sends.values()} == {1}
    assert {event["userId"] for event in world.recorded()} == set(members)
    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED


def _sent_users(world: BroadcastWorld, broadcast_id: str) -> set[str]:
    return {user for user, row in world.sends(broadcast_id).items() if row.state == SendState.SENT}


def _break_email_of(world: BroadcastWorld, user_id: str) -> None:
    """Give the user an address Resend refuses."""
    with world.sessions.begin() as session:
        email_id = session.scalar(
            select(UserProperty.id).where(
                UserProperty.workspace_id == world.workspace_id, UserProperty.name == "email"
            )
        )
        session.execute(
            update(UserPropertyAssignment)
            .where(
                UserPropertyAssignment.user_id == user_id, UserPropertyAssignment.user_property_id == email_id
            )
            .values(value='"not-an-address"')
        )


def datetime_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
