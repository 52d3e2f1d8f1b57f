"""The `feedgate` command: serve, worker, migrate, demo, admin and bootstrap.

Each subcommand reads `Settings` from the environment once; flags only override where to listen.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from engine import __version__
from engine.compute.loop import ComputeProperties, wall_clock_watermark
from engine.errors import EngineError
from engine.event_writer import EventWriter
from engine.storage import make_engine, make_session_factory, upgrade_database
from engine.storage.models import WorkspaceType
from gateway import operator
from gateway.admin_commands import add_admin_commands
from gateway.app import create_app, open_configured_blob_store, open_event_store
from gateway.background import build_worker, close_send_services, open_send_services, worker_owner
from gateway.bootstrap_command import add_bootstrap_command, run_bootstrap
from gateway.metrics import Metrics, serve_metrics_in_thread
from gateway.request_log import configure_access_log
from gateway.sample_parent import PAGE_PATH, sample_parent_routes
from gateway.settings import Settings, SettingsError
from gateway.tracing import WORKER_SERVICE_NAME, configure_tracing


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environ()
    except SettingsError as error:
        print(f"feedgate: configuration error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_access_log(settings.log_level)
    result: int = args.handler(settings, args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedgate", description="Multi-tenant customer-engagement engine.")
    parser.add_argument("--version", action="version", version=f"feedgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP gateway (and the worker, when embedded)")
    _add_listen_flags(serve)
    serve.set_defaults(handler=run_serve)

    demo = commands.add_parser("demo", help="run everything embedded (SQLite + chdb) with sample data")
    _add_listen_flags(demo)
    demo.set_defaults(handler=run_demo)

    worker = commands.add_parser("worker", help="run the background loop against a ClickHouse server")
    worker.set_defaults(handler=run_worker)

    migrate = commands.add_parser("migrate", help="bring the SQL and ClickHouse schemas up to date")
    migrate.set_defaults(handler=run_migrate)

    admin = commands.add_parser("admin", help="operator actions").add_subparsers(dest="action", required=True)
    create = admin.add_parser("create-workspace", help="create a workspace and print its keys")
    create.add_argument("--name", required=True)
    create.add_argument("--type", choices=["root", "parent"], default="root")
    create.set_defaults(handler=run_create_workspace)
    add_admin_commands(admin)
    add_bootstrap_command(commands)
    return parser


def _add_listen_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address to bind")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")), help="port to bind")


def run_serve(settings: Settings, args: argparse.Namespace, app: Starlette | None = None) -> int:
    if settings.bootstrap and app is None:
        # BOOTSTRAP=true: the workspace WORKSPACE_NAME exists before the first request, as upstream.
        status = run_bootstrap(
            settings, argparse.Namespace(workspace_name=None, workspace_type="root", sample_events=0)
        )
        if status != 0:
            return status
    # One process: chdb allows a single owner of its data directory, and the in-process worker
    # would otherwise run once per uvicorn worker.
    uvicorn.run(
        app or create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
        # gateway.request_log writes the access lines, with credentials in query strings redacted.
        access_log=False,
    )
    return 0


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    created = operator.seed_demo(settings)
    if created is not None:
        print(f"feedgate demo: seeded parent workspace {created.workspace_id}")
        print(f"  admin API key (shown once): {created.admin_api_key}")
    sample = operator.prepare_sample_parent(settings)
    app = create_app(settings, extra_routes=sample_parent_routes(sample) if sample else ())
    print(
        f"feedgate demo: data in {settings.data_dir}, open http://{args.host}:{args.port}/dashboard",
        flush=True,
    )
    if sample is not None:
        print(
            f"  sample parent app embedding every screen: http://{args.host}:{args.port}{PAGE_PATH}",
            flush=True,
        )
    return run_serve(settings, args, app)


def run_create_workspace(settings: Settings, args: argparse.Namespace) -> int:
    workspace_type = WorkspaceType.PARENT if args.type == "parent" else WorkspaceType.ROOT
    try:
        created = operator.run_create_workspace(settings, args.name, workspace_type)
    except EngineError as error:
        print(f"feedgate: {error.message}", file=sys.stderr)
        return 1
    print(f"workspace id:  {created.workspace_id}")
    print(f"admin API key: {created.admin_api_key}  (shown once; store it now)")
    if created.write_key:
        print(f"write key:     {created.write_key}")
    return 0


def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    sql_engine = make_engine(settings.database_url)
    upgrade_database(sql_engine)
    sql_engine.dispose()
    store = open_event_store(settings)
    store.close()
    print(
        "feedgate: SQL and ClickHouse schemas are up to date "
        f"(events database {settings.clickhouse_database})"
    )
    return 0


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_events:
        print(
            "feedgate worker: embedded ClickHouse (chdb) belongs to the `feedgate serve` process, which "
            "already runs the worker; set CLICKHOUSE_URL to a ClickHouse server to run separate workers",
            file=sys.stderr,
        )
        return 2
    sql_engine = make_engine(settings.database_url)
    upgrade_database(sql_engine)
    store = open_event_store(settings)
    writer = EventWriter(store)
    metrics = Metrics() if settings.metrics_enabled else None
    if metrics is not None:
        serve_metrics_in_thread(metrics, settings.metrics_port)
    services = open_send_services(
        settings, open_configured_blob_store(settings), observe_send=metrics.record_send if metrics else None
    )
    tracer_provider = configure_tracing(settings, service_name=WORKER_SERVICE_NAME)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        sessions = make_session_factory(sql_engine)
        # Gateways elsewhere may still be inserting events stamped a moment ago; leave them a margin.
        compute = ComputeProperties(sessions, store, wall_clock_watermark(5.0), owner=worker_owner())
        if metrics is not None:
            metrics.watch_compute(lambda: compute.last_completed)
        worker = build_worker(
            settings, sessions, compute, services, writer.accept, tracer_provider=tracer_provider
        )
        gc.freeze()  # as the app does once started (gateway/app.py)
        worker.run(stop)
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()
        close_send_services(services)
        writer.close()
        store.close()
        sql_engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
