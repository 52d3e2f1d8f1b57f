"""A journey survives its worker: a real `feedgate worker` walks users through a journey with a message
node, sending through a Resend stand-in that fails a fifth of its calls, and is SIGKILLed right after
the provider sent the 20th message, before it could hear so. Two new workers take over the runs it left
and every user who entered gets the message exactly once, recorded once."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.storage.journey_models import JourneyRun, RunState
from engine.storage.send_models import MessageSend, SendState
from tests.engine.broadcasts.world import BroadcastWorld
from tests.faults.conftest import (
    delivery_events,
    drain_output,
    start_welcome_journey,
    traceback_in,
    wait_until,
    worker_env,
)
from tests.support.flaky_resend import FlakyResend
from tests.support.processes import running_feedgate

pytestmark = pytest.mark.slow

USERS = 50
KILL_AT = 20
# Long enough for a worker to walk its whole batch of runs (see test_lease_overrun.py for what happens
# when it is not), short enough that the dead worker's runs are taken over soon.
LEASE_SECONDS = "10"


@pytest.fixture
def resend() -> Iterator[FlakyResend]:
    server = FlakyResend(failure_rate=0.2, seed=5).start()
    yield server
    server.stop()


def _runs(sessions: sessionmaker[Session], journey_id: str) -> list[JourneyRun]:
    with sessions() as session:
        return list(session.scalars(select(JourneyRun).where(JourneyRun.journey_id == journey_id)))


@pytest.mark.parametrize("sql_url", ["postgres"], indirect=True)
def test_a_killed_journey_worker_neither_loses_nor_doubles_a_message(
    tmp_path: Path,
    sql_url: str,
    sessions: sessionmaker[Session],
    clickhouse_http_url: str,
    clickhouse_database: str,
    resend: FlakyResend,
) -> None:
    world = BroadcastWorld(sessions)
    world.use_resend(resend.url)
    users = world.add_members(USERS)
    journey_id = start_welcome_journey(world, retryCount=10)
    env = worker_env(
        tmp_path,
        sql_url,
        clickhouse_http_url,
        clickhouse_database,
        resend.url,
        FEEDGATE_SEND_LEASE_SECONDS=LEASE_SECONDS,
    )

    with running_feedgate(["worker"], env) as first:
        resend.kill_after(KILL_AT, first.pid)
        assert first.wait(timeout=120) == -signal.SIGKILL
    assert resend.total_delivered() == KILL_AT
    resend.resume()
    assert any(run.state != RunState.EXITED for run in _runs(sessions, journey_id)), (
        "nothing left to take over"
    )

    with running_feedgate(["worker"], env) as second, running_feedgate(["worker"], env) as third:
        outputs = drain_output(second), drain_output(third)

        def finished() -> bool:
            runs = _runs(sessions, journey_id)
            return len(runs) == USERS and all(run.state == RunState.EXITED for run in runs)

        wait_until(
            lambda: finished() or second.poll() is not None or third.poll() is not None,
            "the survivors to walk every run to its exit",
            outputs=outputs,
        )
        for worker, output in zip((second, third), outputs, strict=True):
            assert worker.poll() is None, f"a worker died:\n{traceback_in(output)}"

    assert Counter(run.user_id for run in _runs(sessions, journey_id)) == Counter(users)
    assert resend.failed > 0
    # The message sent as the first worker died was sent again under its idempotency key.
    assert resend.replayed >= 1
    assert resend.delivered == Counter({f"{user}@example.com": 1 for user in users})
    with sessions() as session:
        states = session.scalars(
            select(MessageSend.state).where(MessageSend.workspace_id == world.workspace_id)
        )
        assert set(states) == {SendState.SENT}
    events = delivery_events(
        clickhouse_http_url, clickhouse_database, world.workspace_id, ("journey_id", journey_id)
    )
    sent = {user: count for (event, user), count in events.items() if event == "DFInternalMessageSent"}
    assert sent == dict.fromkeys(users, 1)
    assert not any(event in ("DFMessageFailure", "DFJourneyEarlyExit") for event, _ in events)
    world.close()
