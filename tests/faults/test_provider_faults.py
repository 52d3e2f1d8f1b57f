"""A broadcast through an email provider that times out and answers 500s for a while, then recovers.

A real `feedgate worker` sends a broadcast through a Resend stand-in whose first message is sent but
answered only after the worker's provider timeout, and whose next requests are answered 500; then it
works again. One member's address is refused for good. Every other member ends with exactly one
message at the provider and one `DFInternalMessageSent`; the refused one with one request, no retry and
one `DFMessageFailure`; each retry came after its backoff.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.messaging.ledger import RetryPolicy
from engine.storage.broadcast_models import BroadcastStatus
from engine.storage.send_models import SendState
from tests.engine.broadcasts.world import BroadcastWorld
from tests.faults.conftest import delivery_events, drain_output, traceback_in, wait_until, worker_env
from tests.faults.resend_standin import LATE, SERVER_ERROR, ResendStandIn
from tests.support.processes import running_feedgate

pytestmark = pytest.mark.slow

MEMBERS = 30
REFUSED = "user-0007@example.com"
SERVER_ERRORS = 60
RETRY_BASE_MS = 200
# The worker's provider timeout, and the late answer's delay past it.
PROVIDER_TIMEOUT_SECONDS = 3
LATE_SECONDS = 5.0


@pytest.fixture
def resend() -> Iterator[ResendStandIn]:
    server = ResendStandIn(rejected=frozenset({REFUSED}), late_seconds=LATE_SECONDS).start()
    yield server
    server.stop()


@pytest.mark.parametrize("sql_url", ["postgres"], indirect=True)
def test_a_failing_provider_delays_messages_but_neither_loses_nor_doubles_one(
    tmp_path: Path,
    sql_url: str,
    sessions: sessionmaker[Session],
    clickhouse_http_url: str,
    clickhouse_database: str,
    resend: ResendStandIn,
) -> None:
    world = BroadcastWorld(sessions)
    world.use_resend(resend.url)
    members = world.add_members(MEMBERS)
    # One message per batch, so each retry's backoff is measured from its own send.
    broadcast_id = world.create_broadcast(batchSize=1)
    resend.script([LATE, *[SERVER_ERROR] * SERVER_ERRORS])
    world.start(broadcast_id)
    env = worker_env(
        tmp_path,
        sql_url,
        clickhouse_http_url,
        clickhouse_database,
        resend.url,
        FEEDGATE_SEND_RETRY_BASE_MS=str(RETRY_BASE_MS),
        FEEDGATE_PROVIDER_TIMEOUT_SECONDS=str(PROVIDER_TIMEOUT_SECONDS),
        # Longer than the provider timeout: the late answer is waited for by its own worker.
        FEEDGATE_SEND_LEASE_SECONDS="300",
    )

    with running_feedgate(["worker"], env) as worker:
        output = drain_output(worker)
        wait_until(
            lambda: world.status(broadcast_id) != BroadcastStatus.RUNNING or worker.poll() is not None,
            "the broadcast to finish",
            seconds=150,
            outputs=[output],
        )
        assert worker.poll() is None, f"the worker died:\n{traceback_in(output)}"

    assert world.status(broadcast_id) == BroadcastStatus.COMPLETED
    delivered = [member for member in members if f"{member}@example.com" != REFUSED]
    refused = next(member for member in members if f"{member}@example.com" == REFUSED)
    # The provider sent every message once, including the one answered too late (retried under the
    # same idempotency key and answered from the first send).
    assert resend.delivered == Counter({f"{member}@example.com": 1 for member in delivered})
    assert len(resend.attempts_of(LATE)) == 1
    assert len(resend.attempts_of("replayed")) >= 1
    assert len(resend.attempts_of(SERVER_ERROR)) == SERVER_ERRORS
    # The refusal is final: one request, never retried.
    assert [attempt.outcome for attempt in resend.attempts if attempt.to == REFUSED] == ["422"]
    # Each retry after a 500 waited at least the policy's delay for that attempt (less the time the
    # worker spent between reading its clock and calling the provider).
    policy = RetryPolicy(base_seconds=RETRY_BASE_MS / 1000)
    doubled = 0
    for tries in resend.attempts_by_key().values():
        for number, (failed, retry) in enumerate(zip(tries, tries[1:], strict=False), start=1):
            if failed.outcome != SERVER_ERROR:
                continue
            assert retry.at - failed.at >= policy.delay(number).total_seconds() / 2
            doubled += number >= 2
    assert doubled > 0, "no message was retried twice: the script did not exercise the doubling"

    sends = world.sends(broadcast_id)
    assert {user: row.state for user, row in sends.items()} == {
        **dict.fromkeys(delivered, SendState.SENT),
        refused: SendState.FAILED,
    }
    assert all(row.recorded_at is not None for row in sends.values())
    events = delivery_events(
        clickhouse_http_url, clickhouse_database, world.workspace_id, ("broadcast_id", broadcast_id)
    )
    assert events == {
        **{("DFInternalMessageSent", member): 1 for member in delivered},
        ("DFMessageFailure", refused): 1,
    }
    world.close()
