"""bench/load: sustained mixed traffic against a real `feedgate serve` on loopback, for a fixed time.

The server runs as a subprocess (embedded SQLite + chdb, a throwaway data directory, its in-process
worker on). A parent workspace is created with `feedgate admin create-workspace --type parent`, a
child with `PUT /api-l/admin/workspaces/child`, and an embedded session token with
`POST /api-l/sessions`. The child gets a segment, an SMS template, a broadcast, a few hundred
identified users and some deliveries (a batch send through the Test provider).

Then `--concurrency` clients run closed loops (each sends its next request when the last one has been
answered) for `--seconds`, each picking its next request from a fixed weighted mix:

- ingest (write key): `POST /api/public/apps/batch` of 20 events, `POST /api/public/apps/track`;
- embedded screens (session token as `Authorization: Bearer`): `/dashboard-l/embedded/deliveries/v2`,
  `/analysis-chart`, `/segments`, `/broadcasts`;
- admin reads (the parent's admin API key): `GET /api/admin/events`, `GET /api/admin/deliveries`,
  `POST /api/admin/users`.

Reported per class and overall: requests, throughput, p50/p99 latency and errors (non-2xx by status,
failed connections by exception name). The server's resident memory (VmRSS) is sampled every second;
its slope over the second half of the run, in MB per minute, says whether memory stays flat.

Run: .venv/bin/python bench/load.py [--seconds 60] [--concurrency 16] [--json]
With --json the table goes to stderr and stdout gets one JSON line (bench/run reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

FEEDGATE = str(Path(sys.executable).with_name("feedgate"))
USERS = 300
SEEDED_DELIVERIES = 60
BATCH_SIZE = 20
REQUEST_TIMEOUT_SECONDS = 30.0
HAS_PLAN = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
SMS = {"type": "Sms", "body": "Hi {{ user.firstName }}, your order is ready"}


@dataclass(frozen=True)
class Account:
    """What the clients need: where the server is and the three credentials."""

    url: str
    parent_id: str
    admin_key: str
    child_id: str
    write_key: str
    token: str


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str] | None = None
    body: Any = None


@dataclass(frozen=True)
class TrafficClass:
    name: str
    group: str
    # How many of every sum(weights) picks go to this class (before the closed loop evens it out).
    weight: int
    build: Callable[[Account, random.Random], Call]


@dataclass
class Tally:
    """One class's outcomes: latencies of every answered request and errors by status or exception."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(v for k, v in self.errors.items() if not k.isdigit())


def random_event(rng: random.Random) -> dict[str, Any]:
    user = f"user-{rng.randrange(USERS)}"
    if rng.random() < 0.25:
        traits = {"plan": rng.choice(["free", "pro"]), "firstName": f"N{rng.randrange(1000)}"}
        return {"type": "identify", "userId": user, "messageId": str(uuid.uuid4()), "traits": traits}
    return {
        "type": "track",
        "userId": user,
        "messageId": str(uuid.uuid4()),
        "event": rng.choice(["PAGE_VIEWED", "ORDER_PLACED", "CART_UPDATED"]),
        "properties": {"amount": rng.randrange(1, 500), "sku": f"sku-{rng.randrange(50)}"},
    }


def ingest_batch(account: Account, rng: random.Random) -> Call:
    batch = [random_event(rng) for _ in range(BATCH_SIZE)]
    return Call("POST", "/api/public/apps/batch", {"authorization": account.write_key}, body={"batch": batch})


def ingest_track(account: Account, rng: random.Random) -> Call:
    event = random_event(rng)
    event = event if event["type"] == "track" else {**event, "type": "track", "event": "SIGNED_IN"}
    body = {k: v for k, v in event.items() if k not in ("type", "traits")}
    return Call("POST", "/api/public/apps/track", {"authorization": account.write_key}, body=body)


def embedded_screen(path: str) -> Callable[[Account, random.Random], Call]:
    def build(account: Account, rng: random.Random) -> Call:
        headers = {"authorization": f"Bearer {account.token}"}
        return Call("GET", f"/dashboard-l/embedded{path}", headers, params={"workspaceId": account.child_id})

    return build


def admin_events(account: Account, rng: random.Random) -> Call:
    params = {"workspaceId": account.child_id, "limit": "50"}
    return Call("GET", "/api/admin/events", _admin(account), params=params)


def admin_deliveries(account: Account, rng: random.Random) -> Call:
    params = {"workspaceId": account.child_id, "limit": "20"}
    return Call("GET", "/api/admin/deliveries", _admin(account), params=params)


def admin_users(account: Account, rng: random.Random) -> Call:
    return Call(
        "POST", "/api/admin/users", _admin(account), body={"workspaceId": account.child_id, "limit": 20}
    )


def _admin(account: Account) -> dict[str, str]:
    return {"authorization": f"Bearer {account.admin_key}"}


CLASSES = [
    TrafficClass("ingest batch/20", "ingest", 3, ingest_batch),
    TrafficClass("ingest track", "ingest", 3, ingest_track),
    TrafficClass("screen deliveries", "embedded", 1, embedded_screen("/deliveries/v2")),
    TrafficClass("screen analysis", "embedded", 1, embedded_screen("/analysis-chart")),
    TrafficClass("screen segments", "embedded", 1, embedded_screen("/segments")),
    TrafficClass("screen broadcasts", "embedded", 1, embedded_screen("/broadcasts")),
    TrafficClass("admin events", "admin", 1, admin_events),
    TrafficClass("admin deliveries", "admin", 1, admin_deliveries),
    TrafficClass("admin users", "admin", 1, admin_users),
]


# --- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path) -> dict[str, str]:
    # The embedded defaults, whatever the caller's shell points at.
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CLICKHOUSE_", "AUTH_"))
    }
    # The default log level: access lines are part of what a request costs in production.
    return {**inherited, "FEEDGATE_DATA_DIR": str(data_dir)}


def create_parent(env: dict[str, str]) -> tuple[str, str]:
    """The parent's workspace id and admin API key, made as an operator does, before the server runs."""
    result = subprocess.run(
        [FEEDGATE, "admin", "create-workspace", "--name", "Load Parent", "--type", "parent"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"create-workspace failed:\n{result.stderr}")
    lines = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in result.stdout.splitlines())}
    return lines["workspace id"], lines["admin API key"].split()[0]


@contextmanager
def running_server(env: dict[str, str], port: int, log: TextIO) -> Iterator[subprocess.Popen[bytes]]:
    # Output goes to a file: an unread pipe would fill up and stall the server mid-run.
    process = subprocess.Popen([FEEDGATE, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/api/readyz", process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"feedgate serve exited with {process.returncode} before answering")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never answered")


# --- seeding ---------------------------------------------------------------------------------------


def seed(url: str, parent_id: str, admin_key: str) -> Account:
    """A child workspace with a segment, a template, a broadcast, users and deliveries; a session token."""
    with httpx.Client(base_url=url, timeout=60, headers={"authorization": f"Bearer {admin_key}"}) as api:

        def call(method: str, path: str, body: dict[str, Any]) -> Any:
            response = api.request(method, path, json=body)
            if not response.is_success:
                raise SystemExit(f"seeding: {method} {path} -> {response.status_code} {response.text}")
            return response.json() if response.content else None

        child = call(
            "PUT",
            "/api-l/admin/workspaces/child",
            {"workspaceId": parent_id, "name": "Load Child", "externalId": "load-child"},
        )
        child_id, write_key = child["id"], child["writeKey"]
        rng = random.Random(1)
        identifies = [
            {
                "type": "identify",
                "userId": f"user-{n}",
                "messageId": str(uuid.uuid4()),
                "traits": {
                    "plan": rng.choice(["free", "pro"]),
                    "firstName": f"N{n}",
                    "phone": f"+1555{n:07d}",
                },
            }
            for n in range(USERS)
        ]
        for start in range(0, USERS, 100):
            response = api.post(
                "/api/public/apps/batch",
                json={"batch": identifies[start : start + 100]},
                headers={"authorization": write_key},
            )
            if response.status_code != 204:
                raise SystemExit(f"seeding: batch -> {response.status_code} {response.text}")
        owned = {"workspaceId": child_id}
        segment = call("PUT", "/api/admin/segments", {**owned, "name": "Has a plan", "definition": HAS_PLAN})
        template = call(
            "PUT", "/api/admin/content/templates", {**owned, "name": "Order ready", "definition": SMS}
        )
        call(
            "PUT",
            "/api/admin/broadcasts/v2",
            {**owned, "name": "Spring sale", "segmentId": segment["id"], "messageTemplateId": template["id"]},
        )
        recipients = [
            {"id": f"user-{n}", "properties": {"phone": f"+1555{n:07d}", "firstName": f"N{n}"}}
            for n in range(SEEDED_DELIVERIES)
        ]
        call(
            "POST",
            "/api/admin/content/templates/batch-send",
            {**owned, "templateId": template["id"], "channel": "Sms", "users": recipients},
        )
        session = call("POST", "/api-l/sessions", {"workspaceId": child_id, "ttlSeconds": 3600})
    return Account(url, parent_id, admin_key, child_id, write_key, session["token"])


# --- memory ----------------------------------------------------------------------------------------


def read_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def read_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` so far (fields 14 and 15 of /proc/<pid>/stat, in clock ticks)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_rss(pid: int, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    """(seconds since start, RSS in MB) every second until `stop`."""
    started = time.monotonic()
    while True:
        rss = read_rss_mb(pid)
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
        if stop.wait(1.0):
            return


def slope_mb_per_minute(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of RSS over time, in MB per minute."""
    if len(samples) < 3:
        return None
    xs = [t / 60 for t, _ in samples]
    ys = [rss for _, rss in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def read_log_problems(log: Path) -> list[str]:
    """Lines of the server's output that are not routine: warnings, errors, tracebacks and access
    lines with a 5xx status (access lines are JSON; the rest is the application's and uvicorn's log)."""
    problems = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                status = json.loads(line).get("status")
            except json.JSONDecodeError:
                status = None
            if isinstance(status, int) and status >= 500:
                problems.append(line)
        elif any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
            problems.append(line)
    return problems


# --- the load --------------------------------------------------------------------------------------


async def run_worker(
    index: int, client: httpx.AsyncClient, account: Account, deadline: float, tallies: dict[str, Tally]
) -> None:
    rng = random.Random(index)
    weights = [traffic.weight for traffic in CLASSES]
    while time.monotonic() < deadline:
        (traffic,) = rng.choices(CLASSES, weights)
        call = traffic.build(account, rng)
        tally = tallies[traffic.name]
        started = time.perf_counter()
        try:
            response = await client.request(
                call.method, call.path, headers=call.headers, params=call.params, json=call.body
            )
        except httpx.TransportError as error:
            tally.errors[type(error).__name__] += 1
            await asyncio.sleep(0.05)  # a refused connection fails at once; do not spin
            continue
        tally.latencies.append(time.perf_counter() - started)
        if not response.is_success:
            tally.errors[str(response.status_code)] += 1


async def drive(account: Account, seconds: float, concurrency: int) -> tuple[dict[str, Tally], float]:
    tallies = {traffic.name: Tally() for traffic in CLASSES}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=account.url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
    ) as client:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(run_worker(index, client, account, deadline, tallies) for index in range(concurrency))
        )
        elapsed = time.monotonic() - started
    return tallies, elapsed


# --- the report ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def summarize_tally(tally: Tally, elapsed: float) -> dict[str, Any]:
    latencies = sorted(tally.latencies)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return {
        "requests": tally.requests,
        "throughput": round(tally.requests / elapsed, 1),
        "p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "p99_ms": None if p99 is None else round(p99 * 1000, 1),
        "errors": dict(sorted(tally.errors.items())),
    }


def summarize_memory(samples: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    rss = [mb for _, mb in samples]
    every = max(1, round(len(samples) / 12))
    second_half = [(t, mb) for t, mb in samples if t >= seconds / 2]
    slope = slope_mb_per_minute(second_half)
    return {
        "rss_start_mb": round(rss[0], 1) if rss else None,
        "rss_peak_mb": round(max(rss), 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        "rss_slope_second_half_mb_per_min": None if slope is None else round(slope, 2),
        "rss_samples": len(rss),
        # About a dozen (seconds, MB) points, enough to tell warm-up from steady growth.
        "rss_series": [[round(t), round(mb, 1)] for t, mb in samples[::every]],
    }


def build_summary(
    tallies: dict[str, Tally],
    elapsed: float,
    samples: list[tuple[float, float]],
    seconds: float,
    concurrency: int,
    events_ingested: int,
    log_problems: list[str],
    cpu_seconds: dict[str, float | None],
) -> dict[str, Any]:
    overall = Tally()
    for tally in tallies.values():
        overall.latencies += tally.latencies
        overall.errors.update(tally.errors)
    classes = {name: summarize_tally(tally, elapsed) for name, tally in tallies.items()}
    total = summarize_tally(overall, elapsed)
    return {
        "workload": "load",
        "figure": total["throughput"],
        "unit": "req/s",
        "bare": None,
        "ratio": None,
        "details": {
            "seconds": round(elapsed, 1),
            "concurrency": concurrency,
            "cpu_count": os.cpu_count(),
            "events_ingested": events_ingested,
            # CPU used during the run; on a machine shared with other work, the figures above are
            # only comparable between runs whose server got the same share of the cores.
            "server_cpu_seconds": _round(cpu_seconds["server"]),
            "client_cpu_seconds": _round(cpu_seconds["client"]),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "overall": total,
            "classes": classes,
            "groups": {traffic.name: traffic.group for traffic in CLASSES},
            "memory": summarize_memory(samples, seconds),
            "server_log_problems": len(log_problems),
            "server_log_first_problems": [line[:300] for line in log_problems[:5]],
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def format_table(summary: dict[str, Any]) -> str:
    details = summary["details"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    def row(name: str, figures: dict[str, Any]) -> str:
        errors = ", ".join(f"{k}:{v}" for k, v in figures["errors"].items()) or "0"
        return (
            f"{name:<18} {figures['requests']:>8} {figures['throughput']:>8.1f} "
            f"{ms(figures['p50_ms']):>9} {ms(figures['p99_ms']):>9}  {errors}"
        )

    memory = details["memory"]
    lines = [
        f"feedgate load: {details['seconds']} s, {details['concurrency']} closed-loop clients, "
        f"{details['cpu_count']} cores, {details['events_ingested']} events ingested",
        f"CPU seconds: server {details['server_cpu_seconds']}, load client {details['client_cpu_seconds']}; "
        f"load average {details['load_average_1m']}",
        f"{'class':<18} {'requests':>8} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9}  errors",
        *(row(name, figures) for name, figures in details["classes"].items()),
        row("overall", details["overall"]),
        f"server RSS: start {memory['rss_start_mb']} MB, peak {memory['rss_peak_mb']} MB, "
        f"end {memory['rss_end_mb']} MB, second-half slope "
        f"{memory['rss_slope_second_half_mb_per_min']} MB/min ({memory['rss_samples']} samples)",
        f"server log: {details['server_log_problems']} warning/error/5xx lines",
        *(f"  {line}" for line in details["server_log_first_problems"]),
    ]
    return "\n".join(lines)


def count_ingested(tallies: dict[str, Tally]) -> int:
    batch = tallies["ingest batch/20"]
    track = tallies["ingest track"]
    answered = len(batch.latencies) - sum(v for k, v in batch.errors.items() if k.isdigit())
    return (
        answered * BATCH_SIZE + len(track.latencies) - sum(v for k, v in track.errors.items() if k.isdigit())
    )


def run(seconds: float, concurrency: int, data_dir: Path) -> dict[str, Any]:
    env = server_env(data_dir / "data")
    parent_id, admin_key = create_parent(env)
    port = free_port()
    with open(data_dir / "server.log", "w") as log, running_server(env, port, log) as server:
        account = seed(f"http://127.0.0.1:{port}", parent_id, admin_key)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(server.pid, stop, samples), daemon=True)
        sampler.start()
        server_cpu, client_cpu = read_cpu_seconds(server.pid), time.process_time()
        try:
            tallies, elapsed = asyncio.run(drive(account, seconds, concurrency))
        finally:
            stop.set()
            sampler.join()
        server_after = read_cpu_seconds(server.pid)
        cpu_seconds = {
            "server": None if server_cpu is None or server_after is None else server_after - server_cpu,
            "client": time.process_time() - client_cpu,
        }
        if server.poll() is not None:
            raise SystemExit(f"feedgate serve died during the run (exit {server.returncode})")
    problems = read_log_problems(data_dir / "server.log")
    return build_summary(
        tallies, elapsed, samples, seconds, concurrency, count_ingested(tallies), problems, cpu_seconds
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to drive traffic")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--json", action="store_true", help="one JSON summary line on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and server log")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="feedgate-bench-load-"))
    try:
        summary = run(args.seconds, args.concurrency, data_dir)
    finally:
        if args.keep:
            print(f"data and server.log kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        print(format_table(summary), file=sys.stderr)
        print(json.dumps(summary, separators=(",", ":")), flush=True)
    else:
        print(format_table(summary))


if __name__ == "__main__":
    main()
