"""bench/pages: time to first byte of every embedded screen with `--deliveries` sent messages (1M by
default) in the workspace, on the embedded store (SQLite + chdb), next to the bare engine calls behind
the screens that read ClickHouse, all measured in one run.

Setup: the app (`create_app`, no in-process worker, so no compute loop runs during the measurement)
served by uvicorn in a thread of this process on loopback; a parent workspace with an admin API key
(as `feedgate admin create-workspace` makes one), a child made through `/api-l/admin/workspaces/child`,
and in the child one segment, an email and an SMS template, a broadcast (Completed, so its editor
shows every step) and a running journey, made through the admin API. The deliveries are generated
inside ClickHouse by bench/delivery_queries.py's `generate` (sent messages over the last 30 days, each
with 0–3 status events; their states then folded into the analysis facts, as the compute loop does
in the background), plus a small set sent by the bench's broadcast and journey so that their
DELIVERIES / EVENTS steps and node stats show rows. A session token is minted with
`POST /api-l/sessions` and sent as `Authorization: Bearer`, as static/embed.js sends it.

Measure: per screen, a fresh connection and `--warmup` requests (at least one), then `--requests` GETs
one after the other on that keep-alive connection; time to first byte runs from the start of the
request to the first byte of the answer (peeked on the socket). Next to a screen that reads
ClickHouse, the same engine calls it makes (same filters, same page size), called directly in this
process `--requests` times: the bare figure, and the ratio of the screen's p50 to it. Goal: every
screen's p50 ≤ 30 ms.

Run: PYTHONPATH=. .venv/bin/python bench/pages.py [--deliveries N] [--requests N] [--warmup N] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import update

from bench.delivery_queries import generate
from engine import analysis, deliveries, segments
from engine.delivery_facts import fold_pending_statuses
from engine.event_search import EventFilter, list_event_property_keys, list_trait_keys, search_events
from engine.events import EVENT_COLUMN_TYPES, EVENT_COLUMNS, build_rows
from engine.journeys import resources as journeys
from engine.sent_messages import SentFilter
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.event_store import EventStore
from engine.storage.journey_models import Journey
from engine.storage.models import WorkspaceType
from gateway.app import create_app
from gateway.operator import create_workspace_with_key
from gateway.settings import Settings
from tests.support.net import ThreadedServer

EMBED = "/dashboard-l/embedded"
GOAL_MS = 30.0
# What the editors page through (components.broadcast_steps.PAGE_SIZE).
STEP_PAGE_SIZE = 20
PAID = {
    "entryNode": {
        "type": "Trait",
        "id": "paid",
        "path": "plan",
        "operator": {"type": "Equals", "value": "paid"},
    },
    "nodes": [],
}
EMAIL = {
    "type": "Email",
    "from": "news@acme.test",
    "subject": "Hello {{ user.firstName | default: 'there' }}",
    "body": "<html><body><h1>Hi {{ user.firstName | default: 'there' }}!</h1><p>News.</p></body></html>",
}
SMS = {"type": "Sms", "body": "Hi {{ user.firstName | default: 'there' }}, your code is 1234"}
SENT_EMAIL = {
    "type": "Email",
    "from": "news@acme.test",
    "to": "ada@example.com",
    "subject": "Hello",
    "body": "<p>Hello</p>",
    "provider": {"type": "SendGrid", "messageId": "sg-1"},
}


@dataclass(frozen=True)
class Workspace:
    """The child workspace the screens show, and the ids of what was made in it."""

    id: str
    segment: str
    email_template: str
    sms_template: str
    broadcast: str
    journey: str
    message_node: str


@dataclass(frozen=True)
class ScreenCase:
    name: str
    path: str
    params: dict[str, str]
    # The engine calls behind the screen, when it reads ClickHouse.
    bare: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Measured:
    name: str
    p50: float
    p95: float
    bare_p50: float | None

    @property
    def ratio(self) -> float | None:
        return self.p50 / self.bare_p50 if self.bare_p50 else None


# -- setup -------------------------------------------------------------------------------------------


def make_workspace(base_url: str, admin_key: str, parent_id: str, sessions: Any) -> Workspace:
    """A child of the parent with one of each resource the screens show, made through the admin API."""
    with httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {admin_key}"}) as api:

        def put(path: str, **body: Any) -> dict[str, Any]:
            response = api.put(path, json=body)
            if response.status_code != 200:
                raise SystemExit(f"PUT {path}: {response.status_code} {response.text}")
            found: dict[str, Any] = response.json()
            return found

        child = put(
            "/api-l/admin/workspaces/child", workspaceId=parent_id, name="Bench Child", externalId="bench"
        )["id"]
        segment = put("/api/admin/segments", workspaceId=child, name="Paid", definition=PAID)["id"]
        email = put("/api/admin/content/templates", workspaceId=child, name="News", definition=EMAIL)["id"]
        sms = put("/api/admin/content/templates", workspaceId=child, name="Code", definition=SMS)["id"]
        broadcast = put(
            "/api/admin/broadcasts/v2",
            workspaceId=child,
            name="Spring sale",
            segmentId=segment,
            messageTemplateId=email,
            config={"type": "V2", "message": {"type": "Email"}},
        )["id"]
        node = "welcome-mail"
        definition = {
            "entryNode": {"type": "EntryNode", "segment": segment, "child": node},
            "exitNode": {"type": "ExitNode"},
            "nodes": [
                {
                    "type": "MessageNode",
                    "id": node,
                    "variant": {"type": "Email", "templateId": email},
                    "child": "wait",
                    "name": "Welcome mail",
                },
                {
                    "type": "DelayNode",
                    "id": "wait",
                    "variant": {"type": "Second", "seconds": 3600},
                    "child": "ExitNode",
                },
            ],
        }
        journey = put(
            "/api/admin/journeys",
            workspaceId=child,
            name="Onboarding",
            definition=definition,
            status="Running",
        )["id"]
    # The broadcast has been sent: its editor shows the DELIVERIES and EVENTS steps too.
    with sessions.begin() as session:
        session.execute(
            update(Broadcast).where(Broadcast.id == broadcast).values(status=BroadcastStatus.COMPLETED)
        )
    return Workspace(child, segment, email, sms, broadcast, journey, node)


def seed_origin(
    store: EventStore, workspace_id: str, tags: dict[str, str], template_id: str, count: int, since: datetime
) -> None:
    """`count` sent emails from one broadcast or journey node (`tags`), each delivered, as the sender
    records them; the generated bulk names made-up origins only."""
    step = timedelta(days=30) / count
    values = []
    for n in range(count):
        at = since + step * n
        stamp = at.isoformat().replace("+00:00", "Z")
        sent_id = f"{tags.get('broadcastId') or tags['journeyId']}-{n:08d}"
        user = f"u{n % 50_000}"
        sent = {
            "userId": user,
            "messageId": sent_id,
            "event": "DFInternalMessageSent",
            "timestamp": stamp,
            "properties": {"templateId": template_id, "messageId": sent_id, **tags, "variant": SENT_EMAIL},
        }
        delivered = {
            "userId": user,
            "messageId": f"{sent_id}-delivered",
            "event": "DFEmailDelivered",
            "timestamp": stamp,
            "properties": {"messageId": sent_id, "email": f"{user}@example.com"},
        }
        for raw in (sent, delivered):
            values += [row.values(at) for row in build_rows(workspace_id, "track", raw, at)]
    store.insert("user_events_v2", values, EVENT_COLUMNS, EVENT_COLUMN_TYPES)


# -- the screens and their bare engine calls ---------------------------------------------------------


def screen_cases(store: EventStore, sessions: Any, ws: Workspace, now: datetime) -> list[ScreenCase]:
    def chart(days: int, group_by: analysis.GroupBy | None) -> Callable[[], Any]:
        # As components.analysis_series resolves a preset range: ending at the next whole minute.
        end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(days=days)
        where = analysis.AnalysisFilter(SentFilter(start=start, end=end))
        granularity = analysis.resolve_granularity("auto", start, end)

        def call() -> Any:
            # As the screen reads them: with no channel asked, the summary is the chart's sum.
            data = analysis.chart_data(store, ws.id, where, granularity=granularity, group_by=group_by)
            return analysis.summary_of_chart(data, group_by)

        return call

    def members() -> int:
        return segments.count_segment_members(store, ws.id, [ws.segment])[ws.segment]

    def segment_editor() -> Any:
        members()
        list_trait_keys(store, [ws.id])
        return list_event_property_keys(store, [ws.id], include_internal=False)

    by_broadcast = deliveries.DeliveryFilter(sent=SentFilter(broadcast_ids=[ws.broadcast]))

    def broadcast_deliveries() -> Any:
        deliveries.search_deliveries(store, ws.id, by_broadcast, limit=STEP_PAGE_SIZE)
        return deliveries.count_deliveries(store, ws.id, by_broadcast)

    def broadcast_events() -> Any:
        where = EventFilter(workspace_ids=[ws.id], broadcast_id=ws.broadcast)
        return search_events(store, where, offset=0, limit=STEP_PAGE_SIZE)

    with sessions() as session:
        journey = session.get(Journey, ws.journey)
        session.expunge(journey)

    def journey_stats() -> Any:
        return journeys.journeys_stats(store, ws.id, [journey])

    def editor(step: str) -> dict[str, str]:
        return {"id": ws.broadcast, "step": step}

    return [
        ScreenCase(
            "deliveries table",
            "/deliveries/v2",
            {},
            lambda: deliveries.search_deliveries(store, ws.id, deliveries.DeliveryFilter()),
        ),
        ScreenCase("analysis chart, 7 days", "/analysis-chart", {}, chart(7, None)),
        ScreenCase(
            "analysis chart, 30d by state",
            "/analysis-chart",
            {"range": "30d", "groupBy": "messageState"},
            chart(30, "messageState"),
        ),
        ScreenCase("segments table", "/segments", {}, members),
        ScreenCase("segment editor", "/segments/v1", {"id": ws.segment}, segment_editor),
        ScreenCase("templates table", "/templates", {}),
        ScreenCase("email editor", "/templates/email", {"id": ws.email_template}),
        ScreenCase("SMS editor", "/templates/sms", {"id": ws.sms_template}),
        ScreenCase("broadcasts table", "/broadcasts", {}),
        ScreenCase("broadcast: RECIPIENTS", "/broadcasts/v2", editor("RECIPIENTS"), members),
        ScreenCase("broadcast: CONTENT", "/broadcasts/v2", editor("CONTENT")),
        ScreenCase("broadcast: CONFIGURATION", "/broadcasts/v2", editor("CONFIGURATION")),
        ScreenCase("broadcast: DELIVERIES", "/broadcasts/v2", editor("DELIVERIES"), broadcast_deliveries),
        ScreenCase("broadcast: EVENTS", "/broadcasts/v2", editor("EVENTS"), broadcast_events),
        ScreenCase("journeys table", "/journeys", {}, journey_stats),
        ScreenCase("journey editor", "/journeys/v2", {"id": ws.journey}, journey_stats),
    ]


# -- measuring ---------------------------------------------------------------------------------------


class PageClient:
    """One keep-alive HTTP/1.1 connection that times each GET to the first byte of its answer."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=120)
        self.token = token

    def get(self, target: str) -> tuple[float, int, bytes]:
        """Seconds to the first byte, the status, and the body."""
        started = time.perf_counter()
        self.connection.putrequest("GET", target)
        self.connection.putheader("Authorization", f"Bearer {self.token}")
        self.connection.endheaders()
        sock = self.connection.sock
        assert sock is not None
        sock.recv(1, socket.MSG_PEEK)
        first_byte = time.perf_counter() - started
        response = self.connection.getresponse()
        body = response.read()
        return first_byte, response.status, body

    def close(self) -> None:
        """Close the connection; the next request opens a new one (uvicorn closes a keep-alive
        connection idle for 5 s, as one is while the bare calls run)."""
        self.connection.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def measure(client: PageClient, workspace_id: str, case: ScreenCase, requests: int, warmup: int) -> Measured:
    target = f"{EMBED}{case.path}?{urlencode({'workspaceId': workspace_id, **case.params})}"
    client.close()
    for _ in range(max(1, warmup)):
        _, status, body = client.get(target)
        if status != 200:
            raise SystemExit(f"{case.name}: GET {target} answered {status}: {body[:500]!r}")
    seconds = []
    for _ in range(requests):
        first_byte, status, _ = client.get(target)
        if status != 200:
            raise SystemExit(f"{case.name}: GET {target} answered {status}")
        seconds.append(first_byte * 1000)
    bare = None
    if case.bare is not None:
        for _ in range(warmup):
            case.bare()
        bare_ms = []
        for _ in range(requests):
            started = time.perf_counter()
            case.bare()
            bare_ms.append((time.perf_counter() - started) * 1000)
        bare = statistics.median(bare_ms)
    measured = Measured(case.name, statistics.median(seconds), percentile(seconds, 0.95), bare)
    # Progress for long runs; the table comes at the end.
    print(f"  measured {case.name}: p50 {measured.p50:.1f} ms", file=sys.stderr, flush=True)
    return measured


def print_table(results: list[Measured], deliveries_count: int, requests: int) -> None:
    print(
        f"\nTTFB of each embedded screen, {requests} requests each,"
        f" {deliveries_count:,} deliveries in the workspace"
    )
    print(f"{'screen':<30} {'p50 ms':>8} {'p95 ms':>8} {'bare p50':>9} {'ratio':>7}  goal")
    for row in results:
        bare = f"{row.bare_p50:9.1f}" if row.bare_p50 is not None else f"{'—':>9}"
        ratio = f"{row.ratio:6.2f}x" if row.ratio is not None else f"{'—':>7}"
        verdict = "ok" if row.p50 <= GOAL_MS else "MISSED"
        print(f"{row.name:<30} {row.p50:8.1f} {row.p95:8.1f} {bare} {ratio}  {verdict}")
    missed = [row.name for row in results if row.p50 > GOAL_MS]
    print(
        f"goal p50 ≤ {GOAL_MS:.0f} ms: "
        + (f"missed by {len(missed)} screen(s): {', '.join(missed)}" if missed else "met by every screen")
    )


def json_summary(results: list[Measured], deliveries_count: int) -> str:
    """The machine-readable line bench/report.py gathers (its format is described there)."""
    return json.dumps(
        {
            "bench": "pages",
            "size": f"{deliveries_count:,} deliveries",
            "rows": [
                {
                    "workload": f"page TTFB p50: {row.name}",
                    "figure": round(row.p50, 2),
                    "bare": round(row.bare_p50, 2) if row.bare_p50 is not None else None,
                    "unit": "ms",
                    "better": "lower",
                }
                for row in results
            ],
        }
    )


# -- the run -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace, data_dir: Path) -> list[Measured]:
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'feedgate.db'}",
        clickhouse_url=f"chdb://{data_dir / 'chdb'}",
        secret_key=secrets.token_urlsafe(32),
        auth_mode="multi-tenant",
        log_level="WARNING",
    )
    app = create_app(settings, run_worker=False)
    server = ThreadedServer(app).start()
    try:
        sessions, store = app.state.sessions, app.state.event_store
        with sessions.begin() as session:
            parent = create_workspace_with_key(session, "Bench Parent", WorkspaceType.PARENT)
        ws = make_workspace(server.url, parent.admin_api_key, parent.workspace_id, sessions)
        now = datetime.now(UTC)
        since = now - timedelta(days=30)
        started = time.perf_counter()
        generate(store, ws.id, "00000000-0000-4000-8000-", args.deliveries, since)
        origin_count = max(20, min(10_000, args.deliveries // 100))
        seed_origin(store, ws.id, {"broadcastId": ws.broadcast}, ws.email_template, origin_count, since)
        tags = {"journeyId": ws.journey, "nodeId": ws.message_node}
        seed_origin(store, ws.id, tags, ws.email_template, origin_count, since)
        [(events, sent)] = store.query(
            "SELECT count(), countIf(event = 'DFInternalMessageSent') FROM internal_events"
            " WHERE workspace_id = {w:String}",
            {"w": ws.id},
        )
        print(
            f"data: {sent:,} sent messages and {events - sent:,} status events in the workspace,"
            f" generated in {time.perf_counter() - started:.1f} s"
        )
        # What the compute loop does with status events in the background (no worker runs here).
        started = time.perf_counter()
        changes = fold_pending_statuses(store, ws.id)
        print(
            f"folded {changes:,} delivery state changes into the analysis facts"
            f" in {time.perf_counter() - started:.1f} s"
        )
        minted = httpx.post(
            f"{server.url}/api-l/sessions",
            json={"workspaceId": ws.id},
            headers={"authorization": f"Bearer {parent.admin_api_key}"},
        )
        if minted.status_code != 200:
            raise SystemExit(f"POST /api-l/sessions: {minted.status_code} {minted.text}")
        client = PageClient(server.host, server.port, minted.json()["token"])
        try:
            return [
                measure(client, ws.id, case, args.requests, args.warmup)
                for case in screen_cases(store, sessions, ws, now)
            ]
        finally:
            client.close()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=1_000_000, help="sent messages in the workspace")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per screen")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per screen first")
    parser.add_argument("--json", action="store_true", help="end with one JSON summary line")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="feedgate-bench-pages-"))
    try:
        results = run(args, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print_table(results, args.deliveries, args.requests)
    if args.json:
        print(json_summary(results, args.deliveries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
