"""bench/ingest: event ingest through the HTTP API of one `feedgate serve` process (embedded chdb),
against the bare store underneath, all measured in one run.

Phases, in order:

1. batch ingest: `--requests` POSTs of 100 events to /api/public/apps/batch from `--concurrency`
   closed-loop clients; events/s acknowledged, and events/s until stored: up to the answer of one
   admin read made after the last acknowledgement (a read waits until everything acknowledged before
   it is in the store, so it ends when the last event is there).
2. single events: an open loop at `--rate` requests/s for `--seconds` s, alternating /identify and
   /track. Each request is sent at its scheduled time whatever the earlier ones are doing, and its
   latency runs from that time, so a stall counts against every request it delays; p50/p99 in ms.
3. the bare store, once the server has stopped, in the same data directory and table: the same rows
   inserted the fastest plain way we know, straight into chdb with no HTTP, validation or
   deduplication. Batches: one insert per request's 100 rows, already encoded (JSONCompactColumns
   through a streaming insert), from one thread or from `--concurrency` threads on their own
   connections, whichever is faster. Single events: one-row inserts, one after the other.

The load comes from a small asyncio HTTP/1.1 client on keep-alive connections: this machine's cores
are shared with the server, and a heavier client (httpx costs milliseconds of CPU per request under an
open loop) would measure the client.

Run: .venv/bin/python bench/ingest.py [--requests N] [--concurrency C] [--rate R] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chdb

from engine.events import EVENT_COLUMNS, EventRow, build_rows
from engine.storage import EventStore

FEEDGATE = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "feedgate")
HOST = "127.0.0.1"
PORT = 3917


def _track(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"u{i % 500}",
        "messageId": str(uuid.uuid4()),
        "event": "ORDER_PLACED",
        "properties": {"total": i, "sku": "abc-123"},
    }


def _identify(i: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"u{i % 500}",
        "messageId": str(uuid.uuid4()),
        "traits": {"email": f"u{i % 500}@example.com", "plan": "pro"},
    }


def _batch(n: int) -> list[dict[str, Any]]:
    return [_track(i) for i in range(n)]


def _singles(n: int) -> list[dict[str, Any]]:
    return [_identify(i) if i % 2 == 0 else _track(i) for i in range(n)]


def _without_type(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "type"}


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- a lean HTTP/1.1 client -----------------------------------------------------------------------


def _request(path: str, authorization: str, body: bytes | None = None) -> bytes:
    """A POST of `body`, or a GET without one."""
    if body is None:
        return (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nAuthorization: {authorization}\r\n\r\n".encode()
        )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls) -> _Connection:
        return cls(*await asyncio.open_connection(HOST, PORT))

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _closed_loop(requests: list[bytes], concurrency: int) -> float:
    """Send `requests` from `concurrency` connections, each waiting for its answer; events/s."""
    connections = [await _Connection.open() for _ in range(concurrency)]
    queue = list(reversed(requests))

    async def client(connection: _Connection) -> None:
        while queue:
            status = await connection.send(queue.pop())
            assert status == 204, status

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return elapsed


async def _open_loop(requests: list[bytes], rate: float) -> list[float]:
    """Send request n at start + n/rate on a free connection (opening one if none is free)."""
    # First in, first out, so that every connection stays busier than the server's keep-alive timeout.
    idle = deque([await _Connection.open() for _ in range(16)])
    latencies: list[float] = []

    async def send(request: bytes, due: float) -> None:
        connection = idle.popleft() if idle else await _Connection.open()
        try:
            status = await connection.send(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed it while idle; the request never reached it.
            connection.close()
            connection = await _Connection.open()
            status = await connection.send(request)
        latencies.append(time.perf_counter() - due)
        idle.append(connection)
        assert status == 204, status

    tasks = []
    start = time.perf_counter() + 0.05
    for n, request in enumerate(requests):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(request, due)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return latencies


# --- through the API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    id: str
    write_key: str
    admin_key: str


def start_server(data_dir: str) -> tuple[subprocess.Popen[bytes], Workspace]:
    env = {"FEEDGATE_DATA_DIR": data_dir, "PATH": "/usr/bin:/bin", "FEEDGATE_LOG_LEVEL": "WARNING"}
    created = subprocess.run(
        [FEEDGATE, "admin", "create-workspace", "--name", "Bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # "workspace id:  …", "admin API key: … (shown once; …)", "write key:     Basic …"
    printed = {
        name: value.strip() for name, _, value in (line.partition(":") for line in created.splitlines())
    }
    workspace = Workspace(printed["workspace id"], printed["write key"], printed["admin API key"].split()[0])
    server = subprocess.Popen([FEEDGATE, "serve", "--host", HOST, "--port", str(PORT)], env=env)

    async def ready() -> bool:
        while server.poll() is None:
            try:
                await _Connection.open()
                return True
            except OSError:
                await asyncio.sleep(0.1)
        return False

    if not asyncio.run(ready()):
        raise SystemExit(f"feedgate serve exited with status {server.returncode}")
    return server, workspace


def measure_api(workspace: Workspace, args: argparse.Namespace) -> tuple[float, float, list[float]]:
    """Events/s acknowledged and until stored, in batches; the latencies of single events."""
    write_key = workspace.write_key
    warm_up = [
        _request("/api/public/apps/batch", write_key, json.dumps({"batch": _batch(100)}).encode())
        for _ in range(args.concurrency)
    ]
    batches = [
        _request("/api/public/apps/batch", write_key, json.dumps({"batch": _batch(100)}).encode())
        for _ in range(args.requests)
    ]
    singles = [
        _request(f"/api/public/apps/{m['type']}", write_key, json.dumps(_without_type(m)).encode())
        for m in _singles(round(args.rate * args.seconds))
    ]

    read = _request(f"/api/admin/events?workspaceId={workspace.id}&limit=1", f"Bearer {workspace.admin_key}")

    async def run() -> tuple[float, float, list[float]]:
        await _closed_loop(warm_up, args.concurrency)
        reader = await _Connection.open()
        started = time.perf_counter()
        acknowledged = started + await _closed_loop(batches, args.concurrency)
        assert await reader.send(read) == 200
        stored = time.perf_counter()
        reader.close()
        events = args.requests * 100
        await asyncio.sleep(1)
        singles_latency = await _open_loop(singles, args.rate)
        return events / (acknowledged - started), events / (stored - started), singles_latency

    return asyncio.run(run())


# --- the bare store -------------------------------------------------------------------------------


def _payload(rows: Sequence[EventRow], now: datetime) -> bytes:
    def text(value: datetime) -> str:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") + "Z"

    columns = [
        [row.message_raw for row in rows],
        [row.workspace_id for row in rows],
        [row.message_id for row in rows],
        [text(now)] * len(rows),
        [text(row.server_time) for row in rows],
    ]
    return json.dumps(columns, ensure_ascii=False, separators=(",", ":")).encode()


def _rows(workspace_id: str, messages: Sequence[dict[str, Any]], now: datetime) -> list[EventRow]:
    return [row for m in messages for row in build_rows(workspace_id, m["type"], _without_type(m), now)]


class BareStore:
    """Plain chdb connections on the store the server used, each bound to its database."""

    def __init__(self, path: str, database: str, connections: int) -> None:
        self._idle = []
        for _ in range(connections):
            connection = chdb.connect(path)
            connection.query(f"USE `{database}`", "TSV")
            self._idle.append(connection)
        self._lock = threading.Lock()
        names = ", ".join(EVENT_COLUMNS)
        self._sql = f"INSERT INTO user_events_v2 ({names}) SETTINGS date_time_input_format='best_effort'"

    def insert(self, payload: bytes) -> None:
        with self._lock:
            connection = self._idle.pop()
        try:
            inserter = connection.send_insert(self._sql, "JSONCompactColumns")
            inserter.append(payload)
            inserter.finish()
        finally:
            with self._lock:
                self._idle.append(connection)

    def close(self) -> None:
        for connection in self._idle:
            connection.close()


def measure_bare_batches(bare: BareStore, workspace_id: str, requests: int, concurrency: int) -> float:
    now = datetime.now(UTC)
    best = 0.0
    for threads in sorted({1, concurrency}):
        payloads = [_payload(_rows(workspace_id, _batch(100), now), now) for _ in range(requests)]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(bare.insert, payloads[:threads]))  # warm-up
            started = time.perf_counter()
            list(pool.map(bare.insert, payloads[threads:]))
            elapsed = time.perf_counter() - started
        best = max(best, (requests - threads) * 100 / elapsed)
    return best


def measure_bare_singles(bare: BareStore, workspace_id: str, count: int) -> list[float]:
    """One-row inserts one after the other: the store's own latency for a single event (an open loop
    of one-row inserts at the API's rate would measure the queue, as the store cannot keep up)."""
    now = datetime.now(UTC)
    latencies = []
    for m in _singles(count):
        payload = _payload(_rows(workspace_id, [m], now), now)
        started = time.perf_counter()
        bare.insert(payload)
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600, help="batch requests of 100 events")
    parser.add_argument("--concurrency", type=int, default=8, help="batch clients")
    parser.add_argument("--rate", type=float, default=200, help="single-event requests per second")
    parser.add_argument("--seconds", type=float, default=10, help="length of the single-event phase")
    parser.add_argument(
        "--json", action="store_true", help="end with one JSON summary line (bench/report.py)"
    )
    args = parser.parse_args()
    # Every insert leaves a part on disk (hundreds of MB for a run); the directory goes at the end.
    data_dir = tempfile.mkdtemp(prefix="feedgate-bench-")
    try:
        run(args, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace, data_dir: str) -> None:
    server, workspace = start_server(data_dir)
    try:
        api_batch, api_stored, api_single = measure_api(workspace, args)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()

    store = EventStore.open(f"chdb://{data_dir}/chdb", "feedgate")
    [(workspace_id,)] = store.query("SELECT any(workspace_id) FROM user_events_v2")
    path = store.chdb_path
    store.close()
    assert path is not None
    bare = BareStore(path, "feedgate", args.concurrency)
    try:
        bare_batch = measure_bare_batches(bare, workspace_id, args.requests, args.concurrency)
        time.sleep(1)
        bare_single = measure_bare_singles(bare, workspace_id, min(len(api_single), 300))
    finally:
        bare.close()

    print(f"{'workload':<48}{'feedgate':>12}{'bare store':>12}{'ratio':>8}")
    print(
        f"{'batch ingest, 100 events/request (events/s)':<48}"
        f"{api_batch:>12,.0f}{bare_batch:>12,.0f}{api_batch / bare_batch:>8.2f}"
    )
    print(
        f"{'  the same, until stored (events/s)':<48}"
        f"{api_stored:>12,.0f}{bare_batch:>12,.0f}{api_stored / bare_batch:>8.2f}"
    )
    rows = [
        ("batch ingest, 100 events/request", api_batch, bare_batch, "events/s", "higher"),
        ("batch ingest, until stored", api_stored, bare_batch, "events/s", "higher"),
    ]
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        api, raw = _percentile(api_single, fraction) * 1000, _percentile(bare_single, fraction) * 1000
        print(
            f"{f'single event at {args.rate:.0f}/s, {label} latency (ms)':<48}"
            f"{api:>12.1f}{raw:>12.1f}{api / raw:>8.2f}"
        )
        rows.append((f"single event at {args.rate:.0f}/s, {label} latency", api, raw, "ms", "lower"))
    if args.json:
        size = f"{args.requests * 100:,} events in batches, {len(api_single):,} single events"
        summary = [
            {"workload": f"ingest: {name}", "figure": figure, "bare": bare, "unit": unit, "better": better}
            for name, figure, bare, unit, better in rows
        ]
        print(json.dumps({"bench": "ingest", "size": size, "rows": summary}))


if __name__ == "__main__":
    main()
