"""bench/ingest: batch ingest through the HTTP API (100 events per request, embedded chdb) against a
bare insert of the same rows into the same store, measured in one run.

Run: .venv/bin/python bench/ingest.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx

from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.storage import EventStore

FEEDGATE = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "feedgate")


def _batch(n: int) -> dict[str, object]:
    return {
        "batch": [
            {
                "type": "track",
                "userId": f"u{i % 500}",
                "messageId": str(uuid.uuid4()),
                "event": "ORDER_PLACED",
                "properties": {"total": i, "sku": "abc-123"},
            }
            for i in range(n)
        ]
    }


def measure_api(requests: int, concurrency: int, data_dir: str) -> float:
    env = {"FEEDGATE_DATA_DIR": data_dir, "PATH": "/usr/bin:/bin", "FEEDGATE_LOG_LEVEL": "WARNING"}
    created = subprocess.run(
        [FEEDGATE, "admin", "create-workspace", "--name", "Bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    write_key = next(
        line.split(":", 1)[1].strip() for line in created.splitlines() if line.startswith("write key")
    )
    server = subprocess.Popen([FEEDGATE, "serve", "--port", "3917"], env=env)
    try:
        with httpx.Client() as client:
            while True:
                try:
                    client.get("http://127.0.0.1:3917/api/")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
        bodies = [_batch(100) for _ in range(requests)]

        def send(body: dict[str, object], client: httpx.Client) -> None:
            response = client.post(
                "http://127.0.0.1:3917/api/public/apps/batch", json=body, headers={"authorization": write_key}
            )
            assert response.status_code == 204, response.text

        clients = [httpx.Client(timeout=60) for _ in range(concurrency)]
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda i: send(bodies[i], clients[i % concurrency]), range(requests)))
        return requests * 100 / (time.perf_counter() - started)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()


def measure_bare(events: int, data_dir: str) -> float:
    store = EventStore.open(f"chdb://{data_dir}/bare", "feedgate")
    now = datetime.now(UTC)
    rows = [
        row.values(now)
        for b in range(events // 100)
        for item in _batch(100)["batch"]  # type: ignore[attr-defined]
        for row in build_rows("w", "track", item, now)
    ]
    started = time.perf_counter()
    for start in range(0, len(rows), 100):
        store.insert("user_events_v2", rows[start : start + 100], EVENT_COLUMNS, EVENT_COLUMN_TYPES)
    elapsed = time.perf_counter() - started
    store.close()
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    api_dir, bare_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
    api = measure_api(args.requests, args.concurrency, api_dir)
    bare = measure_bare(args.requests * 100, bare_dir)
    print(f"{'workload':<44}{'feedgate':>12}{'bare store':>12}{'ratio':>8}")
    print(f"{'batch ingest, 100 events/request (events/s)':<44}{api:>12,.0f}{bare:>12,.0f}{api / bare:>8.2f}")


if __name__ == "__main__":
    main()
