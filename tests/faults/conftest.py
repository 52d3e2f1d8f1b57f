"""What the fault tests share: the environment of a `feedgate worker` that sends broadcasts and journey
messages through a Resend stand-in, a one-message journey, a bounded wait, the worker's output read as
it comes, and the delivery events read back from ClickHouse."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.storage import EventStore
from engine.storage.journey_models import Journey, JourneyStatus
from tests.engine.broadcasts.world import BroadcastWorld
from tests.support.processes import feedgate_env


def worker_env(
    tmp_path: Path, sql_url: str, clickhouse_url: str, clickhouse_database: str, resend_url: str, **extra: str
) -> dict[str, str]:
    """A worker on `sql_url` and a ClickHouse server, fast to retry and to take over a dead worker's
    leases, computing segments only once at start (the tests write memberships to SQL themselves)."""
    settings = {
        "DATABASE_URL": sql_url,
        "CLICKHOUSE_URL": clickhouse_url,
        "CLICKHOUSE_DATABASE": clickhouse_database,
        "FEEDGATE_PROVIDER_ENDPOINTS": f"Resend={resend_url}",
        "BROADCAST_SEND_MESSAGES_MAX_ATTEMPTS": "20",
        "FEEDGATE_SEND_RETRY_BASE_MS": "50",
        "FEEDGATE_SEND_LEASE_SECONDS": "3",
        "FEEDGATE_WORKER_POLL_MS": "50",
        "COMPUTE_PROPERTIES_INTERVAL": "600000",
    }
    return feedgate_env(tmp_path, **{**settings, **extra})


def start_welcome_journey(world: BroadcastWorld, **message_node: Any) -> str:
    """A Running journey of the world's workspace: its segment's members enter, get its email template
    (`message_node` adds fields to the message node, e.g. retryCount), and exit."""
    definition = {
        "entryNode": {"type": "EntryNode", "segment": world.segment_id, "child": "hello"},
        "nodes": [
            {
                "type": "MessageNode",
                "id": "hello",
                "variant": {"type": "Email", "templateId": world.template_id},
                "child": "ExitNode",
                **message_node,
            }
        ],
        "exitNode": {"type": "ExitNode"},
    }
    with world.sessions.begin() as session:
        journey = Journey(
            workspace_id=world.workspace_id,
            name="welcome",
            status=JourneyStatus.RUNNING,
            definition=definition,
        )
        session.add(journey)
        session.flush()
        return journey.id


# Lines of each process's output a failed wait shows.
OUTPUT_TAIL = 60


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    seconds: float = 120,
    outputs: Sequence[list[str]] = (),
) -> None:
    """Poll `condition` until it holds; fail naming `what` if it never does (a hang, not a timing),
    with the last lines of each process output in `outputs` (from `drain_output`): why it hung."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            tails = "".join(
                f"\n--- output {n}:\n" + "".join(lines[-OUTPUT_TAIL:]) for n, lines in enumerate(outputs, 1)
            )
            raise AssertionError(f"gave up waiting: {what}{tails}")
        time.sleep(0.1)


def delivery_events(
    clickhouse_url: str, database: str, workspace_id: str, source: tuple[str, str]
) -> dict[tuple[str, str], int]:
    """(event, user id) -> how many internal events of that kind ClickHouse holds for the broadcast or
    journey `source` = (column, id)."""
    column, source_id = source
    assert column in ("broadcast_id", "journey_id")
    store = EventStore.open(clickhouse_url, database)
    try:
        rows = store.query(
            f"SELECT event, user_id, count() FROM internal_events WHERE workspace_id = {{ws:String}}"  # noqa: S608
            f" AND {column} = {{source:String}} GROUP BY event, user_id",
            {"ws": workspace_id, "source": source_id},
        )
    finally:
        store.close()
    return {(str(event), str(user)): int(count) for event, user, count in rows}


def drain_output(process: subprocess.Popen[str]) -> list[str]:
    """Read the process's output as it comes, into the returned list: a pipe nobody reads fills up
    and blocks the process at its next log line (a fault makes a lot of them)."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        # Ends at end of output, or when `running_feedgate` closes the pipe after the process ended.
        with contextlib.suppress(ValueError, OSError):
            for line in process.stdout:
                lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def traceback_in(lines: list[str]) -> str:
    """The process's output from its first traceback on, or '' when it logged none."""
    text = "".join(lines)
    start = text.find("Traceback (most recent call last)")
    return "" if start < 0 else text[start:]
