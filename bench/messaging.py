"""bench/messaging: sending a template to many users, measured against the bare Liquid render of the
same template for the same users, in one run (embedded chdb, SQLite).

Phases:

1. test provider: `--users` users in batch-send calls of `--batch` (the engine's `batch_send`, as the
   `content/templates/batch-send` endpoint calls it): per user the subscription check, rendering
   (from, subject, HTML body with autoescape), List-Unsubscribe headers, the Test provider, and the
   DFInternalMessageSent event recorded durably, as the embedded server records it: in the ingest
   log, stored to ClickHouse behind it (every event is in ClickHouse before the timing ends).
2. bare: python-liquid alone renders the same subject and body for the same users (autoescape on),
   nothing else: the least work any sender of this template must do.
3. smtp: `--smtp-users` users through the SMTP provider to a local aiosmtpd sink in a process of its
   own (as a real mail server would be: in this one it would share the sender's interpreter lock),
   up to PARALLEL_SENDS connections, each reused. `--smtp-reply-ms` delays the sink's answer to each
   message, as a mail server across a network would.

Every send must succeed and be recorded exactly once; the bench stops with an error otherwise.

Run: .venv/bin/python bench/messaging.py [--users N] [--smtp-users N] [--batch N] [--smtp-reply-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from liquid import Environment
from sqlalchemy import select

from engine.event_writer import EventWriter
from engine.ingest_log import IngestLog
from engine.messaging.batch_send import BatchUser, batch_send
from engine.messaging.provider_settings import upsert_provider_config
from engine.messaging.providers.base import ProviderContext
from engine.messaging.send import SendOptions, SendServices
from engine.storage.db import make_engine, make_session_factory
from engine.storage.event_store import EventStore
from engine.storage.migrate import upgrade_database
from engine.storage.resource_models import MessageTemplate, SubscriptionGroup
from engine.workspaces import create_workspace

SUBJECT = "{{ user.firstName | default: 'there' }}, your {{ user.plan }} plan renews soon"
BODY = """<html><body>
<h1>Hi {{ user.firstName | default: "there" }}!</h1>
<p>Your {{ user.plan | upcase }} plan renews on {{ user.renewsOn }}.</p>
<ul>{% for item in user.items %}
<li>{{ item.name }}: {{ item.price | times: 1.2 | round: 2 }}</li>{% endfor %}</ul>
{% if user.plan == "pro" %}<p>Thanks for being a pro.</p>{% else %}<p>Upgrade today.</p>{% endif %}
<p>Questions? Write to {{ user.accountManager | default: "help@acme.test" }}.</p>
</body></html>"""


class CountingSink:
    """An SMTP server that accepts everything and counts messages and client connections."""

    def __init__(self, reply_delay: float) -> None:
        self.messages = 0
        self.peers: set[Any] = set()
        self.reply_delay = reply_delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.reply_delay)
        self.messages += 1
        self.peers.add(session.peer)
        return "250 OK"


def run_sink(port: int, reply_delay: float) -> None:
    """The sink process: serve on `port`, say "ready", and on end of stdin print what it counted."""
    sink = CountingSink(reply_delay)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    print(json.dumps({"messages": sink.messages, "connections": len(sink.peers)}), flush=True)


def start_sink(reply_ms: float) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, __file__, "--sink", str(port), "--smtp-reply-ms", str(reply_ms)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process, port


def stop_sink(process: subprocess.Popen[str]) -> dict[str, int]:
    counts, _ = process.communicate("", timeout=60)
    return dict(json.loads(counts))


def make_users(count: int) -> list[BatchUser]:
    return [
        BatchUser(
            id=f"u{index}",
            message_id=str(uuid.uuid4()),
            properties={
                "email": f"u{index}@example.com",
                "firstName": f"User<{index}>",
                "plan": ("free", "pro", "team")[index % 3],
                "renewsOn": "2026-12-01",
                "items": [{"name": f"seat {n}", "price": 10 + n} for n in range(3)],
            },
        )
        for index in range(count)
    ]


def send_all(
    sessions: Any, services: SendServices, store: EventStore, writer: EventWriter, workspace: str,
    options: SendOptions, users: list[BatchUser], batch: int,
) -> tuple[float, int]:  # fmt: skip
    started = time.perf_counter()
    succeeded = 0
    for start in range(0, len(users), batch):
        with sessions() as session:
            results = batch_send(
                session, services, store, writer, workspace, options, users[start : start + batch]
            )
        succeeded += sum(result["type"] == "Success" for result in results)
    writer.sync()
    return time.perf_counter() - started, succeeded


def bare_render(users: list[BatchUser]) -> float:
    text, html = Environment(), Environment(autoescape=True)
    subject, body = text.from_string(SUBJECT), html.from_string(BODY)
    started = time.perf_counter()
    for user in users:
        scope = {"user": {**user.properties, "id": user.id}}
        subject.render(**scope)
        body.render(**scope)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # run as the SMTP sink process
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--smtp-users", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--smtp-reply-ms",
        type=float,
        default=0.0,
        help="the sink's delay before accepting each message (a mail server across a network)",
    )
    parser.add_argument(
        "--json", action="store_true", help="end with one JSON summary line (bench/report.py)"
    )
    args = parser.parse_args(argv)
    if args.sink:
        run_sink(args.sink, args.smtp_reply_ms / 1000)
        return 0

    directory = Path(tempfile.mkdtemp(prefix="feedgate-bench-messaging-"))
    store = EventStore.open(f"chdb://{directory / 'chdb'}", "bench")
    writer = EventWriter(store, log=IngestLog(directory / "ingest-log"))
    sql = make_engine(f"sqlite:///{directory / 'feedgate.db'}")
    upgrade_database(sql)
    sessions = make_session_factory(sql)
    providers = ProviderContext(httpx.Client())
    services = SendServices(providers, "https://feedgate.example.com")
    try:
        with sessions.begin() as session:
            workspace = create_workspace(session, "bench").id
            template = MessageTemplate(
                workspace_id=workspace,
                name="renewal",
                definition={"type": "Email", "from": "news@acme.test", "subject": SUBJECT, "body": BODY},
            )
            session.add(template)
            session.flush()
            template_id = template.id
            group_id = session.scalars(
                select(SubscriptionGroup.id).where(
                    SubscriptionGroup.workspace_id == workspace, SubscriptionGroup.channel == "Email"
                )
            ).first()
        options = SendOptions(template_id=template_id, channel="Email", subscription_group_id=group_id)

        users = make_users(args.users)
        send_all(
            sessions, services, store, writer, workspace, options, make_users(args.batch), args.batch
        )  # warm-up
        seconds, sent = send_all(sessions, services, store, writer, workspace, options, users, args.batch)
        bare = bare_render(users)
        rate, bare_rate = sent / seconds, len(users) / bare
        print(
            f"test provider: {sent:,} messages (rendered, sent, recorded) in {seconds:.2f} s = {rate:,.0f}/s"
        )
        print(f"bare python-liquid render of the same subject and body: {bare_rate:,.0f} renders/s")
        per_message, per_render = seconds / sent * 1e6, bare / len(users) * 1e6
        ratio = bare_rate / rate
        print(f"cost per message: {per_message:.0f} us vs bare {per_render:.0f} us = {ratio:.2f}x bare")

        smtp_users = make_users(args.smtp_users)
        sink, port = start_sink(args.smtp_reply_ms)
        try:
            smtp = {"type": "Smtp", "host": "127.0.0.1", "port": str(port)}
            with sessions.begin() as session:
                upsert_provider_config(session, workspace, "Email", smtp, set_default=True)
            smtp_seconds, smtp_sent = send_all(
                sessions, services, store, writer, workspace, options, smtp_users, args.batch
            )
            providers.connections.close_all()
        finally:
            counted = stop_sink(sink)
        print(
            f"smtp: {smtp_sent:,} messages in {smtp_seconds:.2f} s ="
            f" {smtp_sent / smtp_seconds:,.0f} messages/s over {counted['connections']} connection(s),"
            f" the server answering each message after {args.smtp_reply_ms:g} ms"
        )
        expected = len(users) + args.batch + len(smtp_users)
        [(recorded,)] = store.query(
            "SELECT count() FROM internal_events"
            " WHERE workspace_id = {w:String} AND event = 'DFInternalMessageSent'",
            {"w": workspace},
        )
        if (
            sent != len(users)
            or smtp_sent != len(smtp_users)
            or recorded != expected
            or counted["messages"] != smtp_sent
        ):
            print(f"FAILED: sent {sent}+{smtp_sent}, recorded {recorded} of {expected}", file=sys.stderr)
            return 1
        if args.json:
            rows = [
                {
                    "workload": "messaging: template sent via Test provider (bare: Liquid render)",
                    "figure": rate,
                    "bare": bare_rate,
                    "unit": "messages/s",
                    "better": "higher",
                },
                {
                    "workload": "messaging: template sent via SMTP to a local sink",
                    "figure": smtp_sent / smtp_seconds,
                    "bare": None,
                    "unit": "messages/s",
                    "better": "higher",
                },
            ]
            size = f"{args.users:,} users (Test), {args.smtp_users:,} (SMTP)"
            print(json.dumps({"bench": "messaging", "size": size, "rows": rows}))
        return 0
    finally:
        providers.connections.close_all()
        providers.http.close()
        writer.close()
        store.close()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
