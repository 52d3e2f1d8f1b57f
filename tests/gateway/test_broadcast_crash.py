"""A broadcast survives its worker: real `feedgate worker` processes on one Postgres send through a
Resend stand-in that fails 30% of calls, and the first worker is SIGKILLed right after the provider
accepted a message it sent, before it could hear so. Every recipient still ends with exactly one
message and one recorded delivery."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.storage import EventStore
from engine.storage.broadcast_models import BroadcastStatus
from engine.storage.send_models import SendState
from tests.engine.broadcasts.world import BroadcastWorld
from tests.support.flaky_resend import FlakyResend
from tests.support.processes import feedgate_env, running_feedgate

RECIPIENTS = 300
KILL_AT = 60


@pytest.fixture
def resend() -> Iterator[FlakyResend]:
    server = FlakyResend(failure_rate=0.3, seed=11).start()
    yield server
    server.stop()


@pytest.mark.parametrize("sql_url", ["postgres"], indirect=True)
def test_a_killed_worker_neither_loses_nor_doubles_a_message(
    tmp_path: Path,
    sql_url: str,
    sessions: sessionmaker[Session],
    clickhouse_http_url: str,
    clickhouse_database: str,
    resend: FlakyResend,
) -> None:
    world = BroadcastWorld(sessions)
    world.use_resend(resend.url)
    members = world.add_members(RECIPIENTS)
    broadcast_id = world.create_broadcast(batchSize=20)
    world.start(broadcast_id)
    env = feedgate_env(
        tmp_path,
        DATABASE_URL=sql_url,
        CLICKHOUSE_URL=clickhouse_http_url,
        CLICKHOUSE_DATABASE=clickhouse_database,
        FEEDGATE_PROVIDER_ENDPOINTS=f"Resend={resend.url}",
        BROADCAST_SEND_MESSAGES_MAX_ATTEMPTS="20",
        FEEDGATE_SEND_RETRY_BASE_MS="20",
        FEEDGATE_SEND_LEASE_SECONDS="3",
        FEEDGATE_WORKER_POLL_MS="50",
        COMPUTE_PROPERTIES_INTERVAL="600000",
    )

    with running_feedgate(["worker"], env) as first:
        resend.kill_after(KILL_AT, first.pid)
        assert first.wait(timeout=120) == -signal.SIGKILL
    assert resend.total_delivered() == KILL_AT
    resend.resume()
    with running_feedgate(["worker"], env), running_feedgate(["worker"], env):
        deadline = time.monotonic() + 180
        while world.status(broadcast_id) == BroadcastStatus.RUNNING:
            assert time.monotonic() < deadline, "the survivors did not finish the broadcast"
            time.sleep(0.2)

    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    assert resend.failed > 0
    # The message accepted as the first worker died was sent again under its idempotency key.
    assert resend.replayed >= 1
    assert resend.delivered == Counter({f"{member}@example.com": 1 for member in members})
    assert {row.state for row in world.sends(broadcast_id).values()} == {SendState.SENT}
    store = EventStore.open(clickhouse_http_url, clickhouse_database)
    try:
        deliveries = store.query(
            "SELECT user_id, count() FROM internal_events WHERE workspace_id = {ws:String}"
            " AND broadcast_id = {b:String} AND event = 'DFInternalMessageSent' GROUP BY user_id",
            {"ws": world.workspace_id, "b": broadcast_id},
        )
    finally:
        store.close()
    assert dict(deliveries) == dict.fromkeys(members, 1)
    world.close()
