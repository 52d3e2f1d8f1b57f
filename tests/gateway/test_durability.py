"""An acknowledged event survives SIGKILL of the server, and none is stored twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.support.net import free_port
from tests.support.processes import FEEDGATE, feedgate_env, running_feedgate, wait_for

pytestmark = pytest.mark.slow

COUNT_SCRIPT = """
import json, sys
from engine.storage import EventStore
store = EventStore.open(sys.argv[1], "feedgate")
rows = store.query("SELECT message_id, count() FROM user_events_v2 GROUP BY message_id")
print(json.dumps(dict(rows)))
store.close()
"""


def _create_workspace(env: dict[str, str]) -> str:
    result = subprocess.run(
        [FEEDGATE, "admin", "create-workspace", "--name", "Durable"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return next(
        line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("write key")
    )


def _send_until_killed(url: str, write_key: str, acknowledged: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            message_id = str(uuid.uuid4())
            body = {"userId": "u1", "messageId": message_id, "event": "TICK"}
            try:
                response = client.post(
                    f"{url}/api/public/apps/track", json=body, headers={"authorization": write_key}
                )
            except httpx.TransportError:
                return
            if response.status_code == 204:
                acknowledged.append(message_id)


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    env = feedgate_env(tmp_path)
    write_key = _create_workspace(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    stop = threading.Event()
    with running_feedgate(["serve", "--port", str(port)], env) as server:
        wait_for(f"{url}/api/", server)
        senders = [
            threading.Thread(target=_send_until_killed, args=(url, write_key, acknowledged, stop))
            for _ in range(4)
        ]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)  # mid-burst: requests are in flight
        server.wait(timeout=30)
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    assert len(acknowledged) >= 200
    # Restart once so the store recovers as it would in production, then count from a fresh process.
    with running_feedgate(["serve", "--port", str(port)], env) as server:
        wait_for(f"{url}/api/readyz", server)
    counts = json.loads(
        subprocess.run(
            [sys.executable, "-c", COUNT_SCRIPT, f"chdb://{tmp_path / 'data' / 'chdb'}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert set(acknowledged) <= set(counts)
    assert max(counts.values()) == 1
