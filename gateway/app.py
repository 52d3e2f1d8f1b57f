"""The app factory: builds the Starlette app from `Settings`, with its stores opened in the lifespan.

Importing this module has no side effects. Stores live on `app.state` (`settings`, `signer`,
`sql_engine`, `sessions`, `event_store`, `event_writer`, `blob_store`). With embedded ClickHouse
(chdb) the worker runs in a thread of this process, because chdb lets only one process own the data
directory.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from components.catalog import screen_routes
from engine.blob_storage import BlobStore, open_blob_store
from engine.compute.loop import ComputeProperties
from engine.event_writer import EventWriter
from engine.ingest_log import IngestLog
from engine.journeys.event_entry import EventEntryStarter
from engine.storage import (
    EventStore,
    make_engine,
    make_read_session_factory,
    make_session_factory,
    upgrade_database,
)
from gateway import dashboard_auth, health, openapi
from gateway.api import (
    analysis,
    audit_log,
    broadcasts,
    child_workspaces,
    component_configurations,
    computed_properties,
    content,
    data_sources,
    deliveries,
    events,
    groups,
    journeys,
    provider_settings,
    provider_webhooks,
    public_apps,
    resources,
    segment_webhook,
    segments,
    sessions,
    subscription_groups,
    subscription_management,
    themes,
    user_properties,
    users,
    view_in_browser,
)
from gateway.background import build_worker, close_send_services, open_send_services, worker_owner
from gateway.body_limit import BodyLimit
from gateway.embed_policy import SecurityHeaders
from gateway.errors import EXCEPTION_HANDLERS
from gateway.member_cookie import MemberSessionMiddleware
from gateway.metrics import MeteredEventWriter, Metrics, MetricsMiddleware, metrics_routes
from gateway.mounts import admin_only_routes, embedded_routes, member_routes
from gateway.paths import STATIC_DIR
from gateway.request_log import RequestLog
from gateway.settings import Settings
from gateway.tokens import TokenSigner
from gateway.tracing import configure_tracing, traced


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the app. `run_worker` defaults to True exactly when events are embedded (chdb);
    `extra_routes` come before the rest (the demo's sample parent page)."""
    settings = settings or Settings.from_environ()
    in_process_worker = settings.embedded_events if run_worker is None else run_worker
    signer = TokenSigner(settings.secret_key, settings.secret_key_fallbacks)
    metrics = Metrics() if settings.metrics_enabled else None
    tracer_provider = configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sql_engine = make_engine(settings.database_url)
        await anyio.to_thread.run_sync(upgrade_database, sql_engine)
        event_store = await anyio.to_thread.run_sync(open_event_store, settings)
        log = IngestLog(settings.ingest_log_dir) if settings.logs_ingest else None
        event_writer = EventWriter(event_store, log=log)
        app.state.sql_engine = sql_engine
        app.state.sessions = make_session_factory(sql_engine)
        app.state.read_sessions = make_read_session_factory(sql_engine)
        app.state.event_store = event_store
        app.state.event_writer = MeteredEventWriter(event_writer, metrics) if metrics else event_writer
        app.state.blob_store = await anyio.to_thread.run_sync(open_configured_blob_store, settings)
        # Its own lease owner: with a ClickHouse server, workers compute the same workspaces.
        compute = ComputeProperties(
            app.state.sessions, event_store, event_writer.watermark, owner=worker_owner()
        )
        app.state.compute = compute
        app.state.send_services = open_send_services(
            settings, app.state.blob_store, observe_send=metrics.record_send if metrics else None
        )
        if metrics is not None:
            metrics.watch_compute(lambda: compute.last_completed)
        app.state.event_entry = EventEntryStarter()
        stop = threading.Event()
        worker_thread = None
        if in_process_worker:
            worker = build_worker(
                settings,
                app.state.sessions,
                app.state.compute,
                app.state.send_services,
                event_writer.accept,
                tracer_provider=tracer_provider,
            )
            worker_thread = threading.Thread(
                target=worker.run, args=(stop,), name="feedgate-worker", daemon=True
            )
            worker_thread.start()
        # What exists once started (modules, classes, compiled schemas and templates, the stores:
        # some 200k objects, living as long as the app) stays out of the garbage collector's full
        # passes: each walked them all, and under load that stalled every thread for 120-160 ms every
        # few seconds. No collection first: at shutdown they are handed back, garbage included.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            stop.set()
            if worker_thread is not None:
                await anyio.to_thread.run_sync(worker_thread.join)
            await anyio.to_thread.run_sync(event_writer.close)
            await anyio.to_thread.run_sync(close_send_services, app.state.send_services)
            event_store.close()
            sql_engine.dispose()
            if tracer_provider is not None:
                # Sends the spans still queued (bounded by the exporter's timeout).
                await anyio.to_thread.run_sync(tracer_provider.shutdown)

    app = Starlette(
        routes=[*extra_routes, *(metrics_routes(metrics) if metrics else ()), *build_routes()],
        middleware=[
            # Outermost first: strip API_PREFIX, log and count, then refuse oversized bodies before
            # any parsing.
            Middleware(StripPrefix, prefix=settings.api_prefix),
            Middleware(RequestLog),
            *([Middleware(MetricsMiddleware, metrics=metrics)] if metrics else []),
            Middleware(BodyLimit, limit=settings.api_body_limit),
            Middleware(SecurityHeaders, dashboard_url=settings.dashboard_url),
            Middleware(MemberSessionMiddleware, signer=signer, secure=settings.session_cookie_secure),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.signer = signer
    return traced(app, tracer_provider)


def build_routes() -> list[BaseRoute]:
    return [
        *health.routes,
        *openapi.routes,
        *dashboard_auth.routes,
        *public_apps.routes,
        *view_in_browser.routes,
        *child_workspaces.routes,
        *events.routes,
        *users.routes,
        *groups.routes,
        *segment_webhook.routes,
        *provider_webhooks.routes,
        *computed_properties.routes,
        *data_sources.routes,
        *segments.routes,
        *journeys.routes,
        *broadcasts.routes,
        *user_properties.routes,
        *resources.routes,
        *content.routes,
        *subscription_groups.routes,
        *deliveries.routes,
        *analysis.routes,
        *provider_settings.routes,
        *subscription_management.routes,
        *sessions.routes,
        *audit_log.routes,
        *component_configurations.routes,
        *themes.routes,
        *admin_only_routes(),
        *member_routes(),
        *embedded_routes(),
        *screen_routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def open_event_store(settings: Settings) -> EventStore:
    """Open the configured event store (chdb or HTTP) and migrate its schema."""
    return EventStore.open(
        settings.clickhouse_url,
        settings.clickhouse_database,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password,
    )


def open_configured_blob_store(settings: Settings) -> BlobStore | None:
    """Open the blob store ENABLE_BLOB_STORAGE and BLOB_STORAGE_* name, or None when disabled."""
    blob = settings.blob_storage
    return open_blob_store(
        enabled=blob.enabled,
        data_dir=settings.data_dir,
        endpoint=blob.endpoint,
        access_key_id=blob.access_key_id,
        secret_access_key=blob.secret_access_key,
        bucket=blob.bucket,
        region=blob.region,
    )


class StripPrefix:
    """Dittofeed's API_PREFIX: requests arrive under `prefix` and are routed without it."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.prefix and scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = dict(
                    scope, path=path[len(self.prefix) :] or "/", root_path=scope.get("root_path", "")
                )
        await self.app(scope, receive, send)
