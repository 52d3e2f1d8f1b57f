"""Postgres restarted in the middle of a broadcast that a real `feedgate worker` is sending.

The worker sends through a Resend stand-in; when the provider has sent the 40th message, and before
the worker hears so, Postgres is stopped (every session ended) and started again a few seconds later
on the same data directory and port. The worker keeps running, reconnects by itself and finishes the
broadcast: every member gets exactly one message and one recorded delivery.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.storage import make_engine, make_session_factory, upgrade_database
from engine.storage.broadcast_models import BroadcastStatus
from engine.storage.send_models import SendState
from tests.engine.broadcasts.world import BroadcastWorld
from tests.faults.conftest import delivery_events, drain_output, traceback_in, wait_until, worker_env
from tests.faults.resend_standin import ResendStandIn
from tests.faults.restartable_postgres import RestartablePostgres, restartable_postgres
from tests.support.processes import running_feedgate

pytestmark = pytest.mark.slow

MEMBERS = 120
STOP_AT = 40
DOWN_SECONDS = 5


@pytest.fixture
def postgres() -> Iterator[RestartablePostgres]:
    with restartable_postgres() as server:
        yield server


@pytest.fixture
def pg_sessions(postgres: RestartablePostgres) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(postgres.url)
    upgrade_database(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def resend() -> Iterator[ResendStandIn]:
    server = ResendStandIn(delay_seconds=0.02).start()
    yield server
    server.stop()


def test_a_broadcast_survives_a_postgres_restart_without_losing_or_doubling_a_message(
    tmp_path: Path,
    postgres: RestartablePostgres,
    pg_sessions: sessionmaker[Session],
    clickhouse_http_url: str,
    clickhouse_database: str,
    resend: ResendStandIn,
) -> None:
    world = BroadcastWorld(pg_sessions)
    world.use_resend(resend.url)
    members = world.add_members(MEMBERS)
    broadcast_id = world.create_broadcast(batchSize=10)
    world.start(broadcast_id)
    stopped = threading.Event()

    def stop_postgres() -> None:
        postgres.stop()
        stopped.set()

    resend.pause_after(STOP_AT, stop_postgres)
    env = worker_env(tmp_path, postgres.url, clickhouse_http_url, clickhouse_database, resend.url)

    with running_feedgate(["worker"], env) as worker:
        output = drain_output(worker)
        wait_until(
            stopped.is_set, "the provider to reach the message at which Postgres stops", outputs=[output]
        )
        time.sleep(DOWN_SECONDS)  # the worker keeps polling a database that is not there
        assert worker.poll() is None, f"the worker died while Postgres was down:\n{traceback_in(output)}"
        postgres.start()
        wait_until(
            lambda: worker.poll() is not None or world.status(broadcast_id) != BroadcastStatus.RUNNING,
            "the broadcast to finish after the restart",
            outputs=[output],
        )
        assert worker.poll() is None, f"the worker died after the restart:\n{traceback_in(output)}"

    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    assert resend.delivered == Counter({f"{member}@example.com": 1 for member in members})
    # The batch in flight when Postgres went away was sent again, under the same idempotency keys.
    assert len(resend.attempts_of("replayed")) >= 1
    assert {row.state for row in world.sends(broadcast_id).values()} == {SendState.SENT}
    events = delivery_events(
        clickhouse_http_url, clickhouse_database, world.workspace_id, ("broadcast_id", broadcast_id)
    )
    assert events == {("DFInternalMessageSent", member): 1 for member in members}
    world.close()
