"""The worker's tasks, built from `Settings` the same way for the in-process worker (`serve` with
embedded ClickHouse) and for `feedgate worker` processes: the compute loop, broadcast batches and
journey steps, plus the sending services they share."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.orm import Session, sessionmaker

from engine.blob_storage import BlobStore
from engine.broadcasts.execution import BroadcastRunner
from engine.compute.loop import ComputeProperties
from engine.journeys.runner import JourneyRunner
from engine.messaging.ledger import RetryPolicy, WriteEvents
from engine.messaging.providers.base import ProviderContext
from engine.messaging.send import SendServices
from engine.storage.models import utcnow
from engine.worker import PeriodicTask, Worker
from gateway.settings import Settings
from gateway.tracing import traced_tasks

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


def open_send_services(
    settings: Settings,
    blob_store: BlobStore | None,
    *,
    observe_send: Callable[[str, str], None] | None = None,
) -> SendServices:
    """Provider connections and link settings for sends; release with `close_send_services`."""
    seconds = settings.provider_timeout_seconds
    timeout = httpx.Timeout(float(seconds), connect=float(min(seconds, 10)))
    providers = ProviderContext(httpx.Client(timeout=timeout), settings.provider_endpoints)
    return SendServices(providers, settings.dashboard_url, blob_store, settings.secret_key, observe_send)


def close_send_services(services: SendServices) -> None:
    services.providers.connections.close_all()
    services.providers.http.close()


def worker_owner() -> str:
    """Who holds a lease: readable in the database, unique per process."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def build_worker(
    settings: Settings,
    sessions: sessionmaker[Session],
    compute: ComputeProperties,
    services: SendServices,
    write_events: WriteEvents,
    *,
    tracer_provider: TracerProvider | None = None,
) -> Worker:
    policy = RetryPolicy(
        max_attempts=settings.broadcast_max_attempts, base_seconds=settings.send_retry_base_ms / 1000
    )
    broadcasts = BroadcastRunner(
        sessions,
        services,
        write_events,
        clock=utcnow,
        owner=worker_owner(),
        recompute=lambda workspace_id, segment_id: compute.compute(workspace_id, only=[segment_id]),
        policy=policy,
        lease=timedelta(seconds=settings.send_lease_seconds),
    )
    journeys = JourneyRunner(
        sessions,
        services,
        write_events,
        clock=utcnow,
        owner=worker_owner(),
        # Attempts come from each message node's retryCount.
        policy=RetryPolicy(base_seconds=settings.send_retry_base_ms / 1000),
        lease=timedelta(seconds=settings.send_lease_seconds),
        entry_interval=timedelta(milliseconds=settings.compute_properties_interval_ms),
    )
    poll = settings.worker_poll_ms / 1000
    tasks: list[tuple[PeriodicTask, float]] = [
        (compute, settings.compute_properties_interval_ms / 1000),
        (broadcasts, poll),
        (journeys, poll),
    ]
    # With START_OTEL, each period of each task is one span.
    return Worker(traced_tasks(tasks, tracer_provider))
