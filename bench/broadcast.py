"""bench/broadcast: one broadcast to `--users` recipients end to end through the Test provider, with one
`feedgate worker` process and then two, on a throwaway Postgres with ClickHouse over HTTP (the chdb
shim), against the bare send loop underneath, all measured in one run.

Phases:

1. bare: `MessagePlan.send` for every recipient in one loop in this process (template render, the
   subscription check, the Test provider): the least work any sender of this broadcast must do. No
   ledger, no events.
2. one worker: a broadcast to the same recipients is started and one worker process loads the
   recipients into the send ledger and sends every batch: claim, send, settle, record the delivery
   events in ClickHouse. Timed from the start call until the broadcast is Completed.
3. two workers: a second broadcast, the same recipients, two worker processes sharing its batches.

Every recipient must end with exactly one Sent ledger row per broadcast and one recorded delivery; the
bench stops with an error otherwise.

Run: .venv/bin/python bench/broadcast.py [--users N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, insert, select

from engine.broadcasts.lifecycle import start_broadcast
from engine.messaging.providers.base import ProviderContext
from engine.messaging.recipients import load_user_properties
from engine.messaging.send import Recipient, SendOptions, SendServices, prepare_message
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.db import make_engine, make_session_factory
from engine.storage.event_store import EventStore
from engine.storage.migrate import upgrade_database
from engine.storage.models import utcnow
from engine.storage.resource_models import MessageTemplate, Segment, SubscriptionGroup, UserProperty
from engine.storage.send_models import MessageSend, SendState
from engine.workspaces import create_workspace
from tests.support.clickhouse_http import ChdbHttp, make_app
from tests.support.net import ThreadedServer
from tests.support.postgres import postgres_cluster

FEEDGATE = str(Path(sys.executable).with_name("feedgate"))
TEMPLATE = {
    "type": "Email",
    "from": "news@acme.test",
    "subject": "{{ user.firstName | default: 'there' }}, our November news",
    "body": "<h1>Hi {{ user.firstName | default: 'there' }}!</h1><p>Here is what is new this month.</p>"
    '<p><a href="{% unsubscribe_url %}">Unsubscribe</a></p>',
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--json", action="store_true", help="end with one JSON summary line (bench/report.py)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, postgres_cluster() as server_url:
        database_url = server_url.rsplit("/", 1)[0] + "/bench"
        with psycopg.connect(
            server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        ) as admin:
            admin.execute("CREATE DATABASE bench")
        shim = ChdbHttp(str(Path(scratch) / "chdb"))
        clickhouse = ThreadedServer(make_app(shim)).start()
        try:
            return run(args, scratch, database_url, clickhouse.url)
        finally:
            clickhouse.stop()
            shim.close()


def run(args: argparse.Namespace, scratch: str, database_url: str, clickhouse_url: str) -> int:
    engine = make_engine(database_url)
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    store = EventStore.open(clickhouse_url, "bench")
    started = time.perf_counter()
    workspace_id, segment_id, template_id, group_id = seed(sessions, args.users)
    with engine.connect() as connection:
        # What autovacuum would do soon after such a load; without it every lookup plans a full scan.
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    print(f"seeded {args.users:,} recipients in {time.perf_counter() - started:.1f} s")

    bare_seconds = send_bare(sessions, workspace_id, template_id, group_id)
    env = {
        **os.environ,
        "FEEDGATE_DATA_DIR": str(Path(scratch) / "data"),
        "DATABASE_URL": database_url,
        "CLICKHOUSE_URL": clickhouse_url,
        "CLICKHOUSE_DATABASE": "bench",
        "COMPUTE_PROPERTIES_INTERVAL": "3600000",
        "FEEDGATE_WORKER_POLL_MS": "50",
        "FEEDGATE_LOG_LEVEL": "WARNING",
    }
    rows = [("bare send loop (this process)", bare_seconds, 1.0)]
    for workers in (1, 2):
        seconds = run_broadcast(
            sessions, store, env, workspace_id, segment_id, template_id, group_id, args, workers
        )
        rows.append(
            (f"broadcast, {workers} worker{'s' if workers > 1 else ''}", seconds, seconds / bare_seconds)
        )
    print(f"\n{'phase':34} {'seconds':>8} {'msg/s':>8} {'x bare':>7}")
    for name, seconds, ratio in rows:
        print(f"{name:34} {seconds:8.1f} {args.users / seconds:8.0f} {ratio:7.2f}")
    if args.json:
        summary = [
            {
                "workload": f"{name} (bare: send loop)",
                "figure": args.users / seconds,
                "bare": args.users / bare_seconds,
                "unit": "messages/s",
                "better": "higher",
            }
            for name, seconds, _ in rows[1:]
        ]
        size = f"{args.users:,} recipients"
        print(json.dumps({"bench": "broadcast", "size": size, "rows": summary}))
    store.close()
    engine.dispose()
    return 0


def seed(sessions, users: int) -> tuple[str, str, str, str]:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        workspace = create_workspace(session, "Bench")
        segment = Segment(
            workspace_id=workspace.id, name="everyone", definition={"entryNode": {}, "nodes": []}
        )
        template = MessageTemplate(workspace_id=workspace.id, name="news", definition=TEMPLATE)
        session.add_all([segment, template])
        session.flush()
        group_id = session.scalar(
            select(SubscriptionGroup.id).where(
                SubscriptionGroup.workspace_id == workspace.id, SubscriptionGroup.channel == "Email"
            )
        )
        names = dict(
            session.execute(
                select(UserProperty.name, UserProperty.id).where(UserProperty.workspace_id == workspace.id)
            ).all()
        )
        now = utcnow()
        for start in range(0, users, 10_000):
            ids = [f"user-{n:07d}" for n in range(start, min(users, start + 10_000))]
            session.execute(
                insert(SegmentAssignment),
                [
                    {
                        "workspace_id": workspace.id,
                        "segment_id": segment.id,
                        "user_id": u,
                        "in_segment": True,
                        "assigned_at": now,
                    }
                    for u in ids
                ],
            )
            session.execute(
                insert(UserPropertyAssignment),
                [
                    {
                        "workspace_id": workspace.id,
                        "user_property_id": names[name],
                        "user_id": u,
                        "value": json.dumps(value),
                        "assigned_at": now,
                    }
                    for u in ids
                    for name, value in (("email", f"{u}@example.com"), ("firstName", f"F{u[-4:]}"))
                ],
            )
        return workspace.id, segment.id, template.id, str(group_id)


def send_bare(sessions, workspace_id: str, template_id: str, group_id: str) -> float:  # type: ignore[no-untyped-def]
    with sessions() as session, httpx.Client() as http:
        services = SendServices(ProviderContext(http, {}), "http://localhost:3000")
        user_ids = list(
            session.scalars(
                select(SegmentAssignment.user_id).where(SegmentAssignment.segment_id.is_not(None))
            )
        )
        properties = load_user_properties(session, workspace_id, user_ids)
        plan = prepare_message(session, services, workspace_id, SendOptions(template_id, "Email", group_id))
        plan.load_subscriptions(session, user_ids)
        started = time.perf_counter()
        for user_id in user_ids:
            result = plan.send(session, Recipient(user_id, properties[user_id]), f"bare-{user_id}")
            if result.type != "Success":
                raise SystemExit(f"bare send failed: {result}")
        return time.perf_counter() - started


def run_broadcast(
    sessions, store, env, workspace_id, segment_id, template_id, group_id, args, workers: int
) -> float:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        broadcast = Broadcast(
            workspace_id=workspace_id,
            name=f"news-{workers}",
            segment_id=segment_id,
            message_template_id=template_id,
            subscription_group_id=group_id,
            config={"type": "V2", "message": {"type": "Email"}, "batchSize": args.batch},
        )
        session.add(broadcast)
    processes = [subprocess.Popen([FEEDGATE, "worker"], env=env) for _ in range(workers)]
    try:
        time.sleep(3)  # let the workers start and migrate before the clock starts
        started = time.perf_counter()
        with sessions.begin() as session:
            start_broadcast(session, workspace_id, broadcast.id, now=utcnow())
        while True:
            with sessions() as session:
                status = session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast.id))
            if status != BroadcastStatus.RUNNING:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=60)
    with sessions() as session:
        sent = session.scalar(
            select(func.count()).where(
                MessageSend.source_id == broadcast.id, MessageSend.state == SendState.SENT
            )
        )
    recorded = store.query(
        "SELECT count(), uniqExact(user_id) FROM internal_events WHERE broadcast_id = {b:String}"
        " AND event = 'DFInternalMessageSent'",
        {"b": broadcast.id},
    )[0]
    if (
        status != BroadcastStatus.COMPLETED
        or sent != args.users
        or tuple(recorded) != (args.users, args.users)
    ):
        raise SystemExit(f"broadcast ended {status}, {sent} sent, recorded {recorded}")
    return seconds


if __name__ == "__main__":
    raise SystemExit(main())
