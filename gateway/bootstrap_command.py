"""`feedgate bootstrap`: make sure a workspace exists (Dittofeed's admin-cli `bootstrap`) and, with
`--sample-events N`, seed it with sample users' identify and track events through the real event writer.

Idempotent: the workspace is found by name before anything is created, and the sample events have
ids derived from the workspace and their position, so the event writer stores a second run's copies
as duplicates (not at all). Only a run that creates the workspace prints an admin API key.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.credentials import default_write_key_header
from engine.errors import InvalidInput
from engine.events import EventRow, build_rows
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType, utcnow
from gateway.admin_commands import event_runtime, reporting_errors, sql_sessions
from gateway.operator import create_workspace_with_key
from gateway.progress import progress
from gateway.settings import Settings

WORKSPACE_TYPES = {"root": WorkspaceType.ROOT, "parent": WorkspaceType.PARENT}
# Each sample user has one identify event, then track events: five events per user.
EVENTS_PER_USER = 5
SAMPLE_TRACK_EVENTS = ("SIGNED_IN", "PAGE_VIEWED", "ORDER_PLACED", "SIGNED_OUT")
SAMPLE_PLANS = ("free", "pro", "enterprise")
# Rows per event-store write, and so per progress step.
WRITE_CHUNK_EVENTS = 500


def add_bootstrap_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the top-level `feedgate bootstrap` command."""
    bootstrap = commands.add_parser(
        "bootstrap",
        help="create the workspace if it is missing (and seed sample events); safe to run again",
    )
    bootstrap.add_argument(
        "--workspace-name", metavar="NAME", help="default: WORKSPACE_NAME (Dittofeed's), else Default"
    )
    bootstrap.add_argument("--workspace-type", choices=sorted(WORKSPACE_TYPES), default="root")
    bootstrap.add_argument(
        "--sample-events",
        type=_non_negative,
        default=0,
        metavar="N",
        help="seed N sample identify/track events (a root workspace only; with embedded ClickHouse, "
        "run it while `feedgate serve` is stopped)",
    )
    bootstrap.set_defaults(handler=run_bootstrap)


@reporting_errors
def run_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    name: str = args.workspace_name or settings.workspace_name
    workspace_type = WORKSPACE_TYPES[args.workspace_type]
    if args.sample_events and workspace_type == WorkspaceType.PARENT:
        print(
            "feedgate: --sample-events needs a root workspace: a Parent receives no events (its children do)",
            file=sys.stderr,
        )
        return 2
    with sql_sessions(settings) as sessions, sessions.begin() as session:
        existing = find_bootstrapped_workspace(session, name, workspace_type)
        if existing is None:
            created = create_workspace_with_key(session, name, workspace_type)
        else:
            write_key = default_write_key_header(session, existing.id)
    # Printed once the transaction committed: a key that was not stored is never shown.
    if existing is None:
        workspace_id = created.workspace_id
        print(f"workspace id:  {workspace_id}  (created {name!r})")
        print(f"admin API key: {created.admin_api_key}  (shown once; store it now)")
        write_key = created.write_key
    else:
        workspace_id = existing.id
        print(f"workspace id:  {workspace_id}  ({name!r} exists already; nothing created)")
    # A parent's write key opens nothing (a Parent receives no events), so it is not shown.
    if write_key and workspace_type != WorkspaceType.PARENT:
        print(f"write key:     {write_key}")
    if args.sample_events:
        written = seed_sample_events(settings, workspace_id, args.sample_events)
        print(f"sample events: {written} stored, {args.sample_events - written} were stored already")
    return 0


def find_bootstrapped_workspace(
    session: Session, name: str, workspace_type: WorkspaceType
) -> Workspace | None:
    """The Active top-level workspace called `name`, if there is one.

    :raises InvalidInput: it exists with the other type (bootstrap never converts a workspace).
    """
    workspace = session.scalar(
        select(Workspace).where(
            Workspace.name == name,
            Workspace.parent_workspace_id.is_(None),
            Workspace.status != WorkspaceStatus.TOMBSTONED,
        )
    )
    if workspace is not None and workspace.type != workspace_type:
        raise InvalidInput(
            f"workspace {name!r} exists with type {workspace.type.value}, not {workspace_type.value}",
            field="workspace-type",
        )
    return workspace


def seed_sample_events(settings: Settings, workspace_id: str, count: int) -> int:
    """Write `count` sample events into the workspace; return how many were new."""
    now = utcnow()
    written = 0
    with event_runtime(settings) as runtime, progress("Seeding sample events", total=count) as bar:
        chunk: list[EventRow] = []
        for row in sample_event_rows(workspace_id, count, now):
            chunk.append(row)
            if len(chunk) == WRITE_CHUNK_EVENTS:
                written += runtime.writer.write(chunk)
                bar.advance(len(chunk))
                chunk = []
        written += runtime.writer.write(chunk)
        bar.advance(len(chunk))
    return written


def sample_event_rows(workspace_id: str, count: int, now: datetime) -> Iterator[EventRow]:
    """`count` events, oldest first, one minute apart and ending at `now`: per sample user an identify
    with email, name and plan, then track events. Event n has the same messageId on every run."""
    namespace = uuid.UUID(workspace_id)
    for n in range(count):
        user_number, step = divmod(n, EVENTS_PER_USER)
        user_id = f"sample-user-{user_number}"
        at = now - timedelta(minutes=count - n)
        message: dict[str, Any] = {
            "messageId": str(uuid.uuid5(namespace, f"feedgate-bootstrap-sample-{n}")),
            "userId": user_id,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
        }
        if step == 0:
            message["traits"] = {
                "email": f"{user_id}@example.com",
                "firstName": f"Sample {user_number}",
                "plan": SAMPLE_PLANS[user_number % len(SAMPLE_PLANS)],
            }
            yield from build_rows(workspace_id, "identify", message, at)
        else:
            message["event"] = SAMPLE_TRACK_EVENTS[(step - 1) % len(SAMPLE_TRACK_EVENTS)]
            message["properties"] = {"sample": True, "step": step}
            yield from build_rows(workspace_id, "track", message, at)


def _non_negative(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {value!r}")
    return int(value)
