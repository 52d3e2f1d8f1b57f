"""A worker whose batch outlives its lease, next to another worker: the batch must still be sent once.

A worker leases a batch (broadcast sends, or journey runs with their sends) for
FEEDGATE_SEND_LEASE_SECONDS; past that, another worker takes the batch over, as it would from a dead
one. A slow provider makes a live worker's batch outlast the lease (here 40 sends of 0.15 s against a
2 s lease; in production 100 sends against a provider timing out at 30 s each, against 5 minutes).
The provider here has no idempotency keys (as SendGrid, SES, Postmark and SMTP have none), so only
the ledger can keep a message from going out twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.storage.broadcast_models import BroadcastStatus
from engine.storage.journey_models import JourneyRun, RunState
from tests.engine.broadcasts.world import BroadcastWorld
from tests.faults.conftest import (
    delivery_events,
    drain_output,
    start_welcome_journey,
    traceback_in,
    wait_until,
    worker_env,
)
from tests.faults.resend_standin import ResendStandIn
from tests.support.processes import running_feedgate

pytestmark = pytest.mark.slow

MEMBERS = 40


@pytest.fixture
def resend() -> Iterator[ResendStandIn]:
    server = ResendStandIn(idempotent=False, delay_seconds=0.15).start()
    yield server
    server.stop()


def _journey_done(world: BroadcastWorld, journey_id: str) -> bool:
    with world.sessions() as session:
        states = list(session.scalars(select(JourneyRun.state).where(JourneyRun.journey_id == journey_id)))
    return len(states) == MEMBERS and set(states) == {RunState.EXITED}


@pytest.mark.parametrize("source", ["broadcast", "journey"])
@pytest.mark.parametrize("sql_url", ["postgres"], indirect=True)
def test_a_batch_that_outlives_its_lease_is_still_sent_once(
    tmp_path: Path,
    sql_url: str,
    sessions: sessionmaker[Session],
    clickhouse_http_url: str,
    clickhouse_database: str,
    resend: ResendStandIn,
    source: str,
) -> None:
    world = BroadcastWorld(sessions)
    world.use_resend(resend.url)
    members = world.add_members(MEMBERS)
    env = worker_env(
        tmp_path,
        sql_url,
        clickhouse_http_url,
        clickhouse_database,
        resend.url,
        FEEDGATE_SEND_LEASE_SECONDS="2",
        # Journeys scan for entries once per compute period; the test's segment is not computed.
        COMPUTE_PROPERTIES_INTERVAL="1000",
    )

    with running_feedgate(["worker"], env) as first, running_feedgate(["worker"], env) as second:
        outputs = drain_output(first), drain_output(second)
        # Both are polling before there is work: whichever takes the batch, the other is there.
        wait_until(
            lambda: all("worker started" in "".join(output) for output in outputs),
            "both workers to start",
            outputs=outputs,
        )
        if source == "broadcast":
            broadcast_id = world.create_broadcast(batchSize=MEMBERS)
            world.start(broadcast_id)
            column, source_id = "broadcast_id", broadcast_id
            wait_until(
                lambda: world.status(broadcast_id) != BroadcastStatus.RUNNING,
                "the broadcast to end",
                outputs=outputs,
            )
        else:
            journey_id = start_welcome_journey(world)
            column, source_id = "journey_id", journey_id
            wait_until(lambda: _journey_done(world, journey_id), "every run to exit", outputs=outputs)
        for worker, output in zip((first, second), outputs, strict=True):
            assert worker.poll() is None, f"a worker died:\n{traceback_in(output)}"

    assert resend.delivered == Counter({f"{member}@example.com": 1 for member in members})
    events = delivery_events(
        clickhouse_http_url, clickhouse_database, world.workspace_id, (column, source_id)
    )
    sent = {user: count for (event, user), count in events.items() if event == "DFInternalMessageSent"}
    assert sent == dict.fromkeys(members, 1)
    world.close()
