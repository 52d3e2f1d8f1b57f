"""ClickHouse unreachable for 30 s while clients keep sending events to a real `feedgate serve`.

The gateway reaches ClickHouse (the chdb HTTP shim) through a TCP proxy that the test cuts: new
connections are refused and open ones reset. While it is cut, ingest refuses with 503 and a message
(nothing is acknowledged that is not stored) and readiness reports the event store down. Once the proxy
is restored the gateway recovers by itself. Clients retry a refused event under the same messageId,
as Segment's libraries do, and in the end every acknowledged event is stored exactly once.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from engine.storage import EventStore
from tests.faults.conftest import drain_output, traceback_in, wait_until
from tests.support.net import free_port
from tests.support.processes import FEEDGATE, feedgate_env, running_feedgate, wait_for
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 30
SENDERS = 4


@dataclass
class Traffic:
    """What the senders saw, shared between their threads."""

    acknowledged: list[str] = field(default_factory=list)
    refused_during_outage: int = 0
    acknowledged_after_restore: int = 0
    # Answers that break the promise: a 2xx during the outage, a 5xx other than 503, a 503 without a
    # message, or a dropped connection.
    broken: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Phases:
    """Set by the test: the outage is certain (a 503 was seen after the cut), then it is over."""

    outage: threading.Event = field(default_factory=threading.Event)
    restored: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def proxy(clickhouse_http_url: str) -> Iterator[TcpProxy]:
    shim = urlsplit(clickhouse_http_url)
    assert shim.hostname is not None and shim.port is not None
    tcp_proxy = TcpProxy(shim.hostname, shim.port).start()
    yield tcp_proxy
    tcp_proxy.stop()


def _create_workspace(env: dict[str, str]) -> str:
    result = subprocess.run(
        [FEEDGATE, "admin", "create-workspace", "--name", "Outage"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return next(
        line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("write key")
    )


def _send(url: str, write_key: str, traffic: Traffic, phases: Phases) -> None:
    """Send events one after another; a refused one is sent again, same messageId, until acknowledged
    (or the test stops)."""
    with httpx.Client(timeout=120) as client:
        message_id = str(uuid.uuid4())
        while not phases.stop.is_set():
            in_outage = phases.outage.is_set() and not phases.restored.is_set()
            after_restore = phases.restored.is_set()
            body = {"userId": "u1", "messageId": message_id, "event": "TICK"}
            try:
                response = client.post(
                    f"{url}/api/public/apps/track", json=body, headers={"authorization": write_key}
                )
            except httpx.TransportError as error:
                with traffic.lock:
                    traffic.broken.append(f"{message_id}: connection failed: {error!r}")
                return
            # A request sent during the outage may be held and answered once the store is back.
            in_outage = in_outage and not phases.restored.is_set()
            with traffic.lock:
                if response.status_code == 204:
                    if in_outage:
                        traffic.broken.append(f"{message_id}: acknowledged while ClickHouse was unreachable")
                    traffic.acknowledged.append(message_id)
                    traffic.acknowledged_after_restore += after_restore
                    message_id = str(uuid.uuid4())
                    continue
                if response.status_code == 503 and _message(response):
                    traffic.refused_during_outage += in_outage
                else:
                    traffic.broken.append(f"{message_id}: {response.status_code} {response.text}")
            time.sleep(0.2)


def _message(response: httpx.Response) -> str | None:
    """The `message` of a JSON error body, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("message") if isinstance(body, dict) else None


def _readiness(url: str) -> tuple[int, object]:
    response = httpx.get(f"{url}/api/readyz", timeout=30)
    return response.status_code, response.json()


def test_events_are_refused_while_clickhouse_is_unreachable_and_none_acknowledged_is_lost(
    tmp_path: Path, proxy: TcpProxy, clickhouse_http_url: str, clickhouse_database: str
) -> None:
    env = feedgate_env(tmp_path, CLICKHOUSE_URL=proxy.url, CLICKHOUSE_DATABASE=clickhouse_database)
    write_key = _create_workspace(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    traffic, phases = Traffic(), Phases()
    with running_feedgate(["serve", "--port", str(port)], env) as server:
        assert wait_for(f"{url}/api/readyz", server).status_code == 200
        output = drain_output(server)
        senders = [
            threading.Thread(target=_send, args=(url, write_key, traffic, phases)) for _ in range(SENDERS)
        ]
        for sender in senders:
            sender.start()
        try:
            wait_until(
                lambda: len(traffic.acknowledged) >= 20,
                "events acknowledged before the outage",
                outputs=[output],
            )

            proxy.cut()
            cut_at = time.monotonic()
            probe = str(uuid.uuid4())
            refused = httpx.post(
                f"{url}/api/public/apps/track",
                json={"userId": "u1", "messageId": probe, "event": "PROBE"},
                headers={"authorization": write_key},
                timeout=120,
            )
            assert refused.status_code == 503, refused.text
            # The refusal says what is wrong and nothing of the store's address or anyone's batch.
            assert refused.json() == {"message": "event store unreachable"}
            assert refused.headers["retry-after"]
            phases.outage.set()
            readiness = _readiness(url)
            assert readiness == (503, {"sql": True, "events": False})
            wait_until(
                lambda: traffic.refused_during_outage >= 20, "refusals during the outage", outputs=[output]
            )
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
            assert server.poll() is None, f"the gateway died during the outage:\n{traceback_in(output)}"
            assert _readiness(url) == (503, {"sql": True, "events": False})

            # Marked first, so an answer racing the restore is never counted as one during the outage.
            phases.restored.set()
            proxy.restore()
            wait_until(
                lambda: _readiness(url)[0] == 200, "readiness after the outage", seconds=60, outputs=[output]
            )
            wait_until(
                lambda: traffic.acknowledged_after_restore >= 20,
                "events acknowledged after the outage",
                outputs=[output],
            )
        finally:
            phases.stop.set()
            for sender in senders:
                sender.join(timeout=150)
        assert server.poll() is None, f"the gateway died:\n{traceback_in(output)}"

    assert traffic.broken == []
    store = EventStore.open(clickhouse_http_url, clickhouse_database)
    try:
        rows = store.query(
            "SELECT message_id, count() FROM user_events_v2 WHERE event = 'TICK' GROUP BY message_id"
        )
        probe_stored = store.query(
            "SELECT count() FROM user_events_v2 WHERE message_id = {id:String}", {"id": probe}
        )
    finally:
        store.close()
    stored = Counter({str(message_id): int(count) for message_id, count in rows})
    assert set(traffic.acknowledged) <= set(stored), "an acknowledged event was lost"
    assert max(stored.values()) == 1, "an event was stored twice"
    assert probe_stored == [(0,)], "a refused event was stored"
