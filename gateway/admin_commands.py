"""The `feedgate admin` operator commands beyond create-workspace: workspaces, keys, workspace status,
SECRET_KEY rotation, recompute, manual-segment CSV uploads and event backfills.

Each command is a thin shell over the engine function the HTTP API uses for the same action
(credentials, workspaces, manual_segments, the compute loop), so the CLI and the API cannot disagree.
Results go to stdout (parseable, `--json` where a listing is useful); progress and notes go to stderr.
An engine error is printed as `feedgate: <message>` with exit status 1; a misuse of the command line
exits 2. Secrets are printed only when created (an admin API key, once) or when they are the output
the operator asked for (a new SECRET_KEY).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import credentials, event_import, manual_segments, segment_files, workspaces
from engine.compute.loop import ComputeProperties, load_targets, wall_clock_watermark
from engine.errors import EngineError, InvalidInput, NotFound
from engine.event_writer import EventWriter
from engine.resources import canonical_uuid
from engine.storage import make_engine, make_session_factory, upgrade_database
from engine.storage.event_store import EventStore
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType, utcnow
from engine.storage.resource_models import Segment, UserProperty
from gateway.app import open_event_store
from gateway.background import worker_owner
from gateway.progress import progress
from gateway.settings import SAMPLE_SECRET_KEYS, Settings

Handler = Callable[[Settings, argparse.Namespace], int]

KEY_KINDS = ("admin", "write")
STATUSES = tuple(status.value for status in WorkspaceStatus)
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name): where anonymous mode keeps its key
# Users per event-store write of a CSV upload: one progress step, and bounded memory per write.
CSV_CHUNK_USERS = 1000
# Events per event-store write of a backfill: one progress step, and bounded memory per write.
IMPORT_CHUNK_EVENTS = 5000
# Events from other gateways may still be landing this long after their stamp (as `feedgate worker`).
SERVER_WATERMARK_LAG_SECONDS = 5.0


def add_admin_commands(admin: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator subcommands to the `feedgate admin` group."""
    listing = admin.add_parser("list-workspaces", help="list workspaces (or one parent's children)")
    listing.add_argument("--parent", metavar="ID", help="only the children of this parent workspace")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    listing.set_defaults(handler=run_list_workspaces)

    create = admin.add_parser("create-key", help="create an admin API key or a write key; prints it once")
    create.add_argument("--workspace", required=True, metavar="ID")
    create.add_argument("--kind", required=True, choices=KEY_KINDS)
    create.add_argument("--name", required=True, type=_key_name)
    create.set_defaults(handler=run_create_key)

    keys = admin.add_parser("list-keys", help="list a workspace's keys (never their secrets)")
    keys.add_argument("--workspace", required=True, metavar="ID")
    keys.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    keys.set_defaults(handler=run_list_keys)

    delete = admin.add_parser("delete-key", help="delete a key; everything it opened stops working")
    delete.add_argument("--workspace", required=True, metavar="ID")
    delete.add_argument("--key-id", required=True, metavar="ID", help="the id list-keys shows")
    delete.add_argument("--kind", choices=KEY_KINDS, help="only look among keys of this kind")
    delete.set_defaults(handler=run_delete_key)

    status = admin.add_parser("set-status", help="pause, resume or tombstone a workspace")
    status.add_argument("--workspace", required=True, metavar="ID")
    status.add_argument("--status", required=True, choices=STATUSES)
    status.set_defaults(handler=run_set_status)

    rotate = admin.add_parser(
        "rotate-secret-key", help="make a new SECRET_KEY and print it with the fallback list to set"
    )
    rotate.add_argument(
        "--keep", type=_non_negative, default=2, metavar="N", help="old keys still accepted (default 2)"
    )
    rotate.add_argument(
        "--write",
        action="store_true",
        help=f"anonymous mode: replace the key file ({SECRET_KEY_FILE} in the data dir) as well",
    )
    rotate.set_defaults(handler=run_rotate_secret_key)

    recompute = admin.add_parser(
        "recompute",
        help="compute a workspace's segments and user properties now (with embedded ClickHouse, stop "
        "`feedgate serve` first: chdb has one owner)",
    )
    recompute.add_argument("--workspace", required=True, metavar="ID")
    recompute.add_argument(
        "--property",
        action="append",
        metavar="ID",
        help="a segment or user property id (repeatable); default: every Running one",
    )
    recompute.set_defaults(handler=run_recompute)

    upload = admin.add_parser(
        "upload-segment-csv",
        help="set a manual segment's members from a CSV file (with embedded ClickHouse, stop "
        "`feedgate serve` first)",
    )
    upload.add_argument("--workspace", required=True, metavar="ID")
    upload.add_argument("--segment", required=True, metavar="ID")
    upload.add_argument("--append", action="store_true", help="add to the members instead of replacing")
    upload.add_argument("file", metavar="FILE", help='CSV with an "id" column; other columns become traits')
    upload.set_defaults(handler=run_upload_segment_csv)

    backfill = admin.add_parser(
        "import-events",
        help="backfill a workspace's past events from newline-delimited JSON (with embedded ClickHouse, "
        "stop `feedgate serve` first)",
    )
    backfill.add_argument("--workspace", required=True, metavar="ID")
    backfill.add_argument(
        "file", metavar="FILE", help="one Segment message with its type per line (Dittofeed's message_raw)"
    )
    backfill.set_defaults(handler=run_import_events)


def reporting_errors(handler: Handler) -> Handler:
    """Turn the engine's errors (and unreadable files) into one stderr line and exit status 1."""

    @functools.wraps(handler)
    def run(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return handler(settings, args)
        except EngineError as error:
            print(f"feedgate: {error.message}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"feedgate: {error.filename or 'file'}: {error.strerror or error}", file=sys.stderr)
            return 1

    return run


@contextmanager
def sql_sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured SQL database, migrated first (an operator may run this before serve)."""
    sql_engine = make_engine(settings.database_url)
    try:
        upgrade_database(sql_engine)
        yield make_session_factory(sql_engine)
    finally:
        sql_engine.dispose()


@dataclass(frozen=True)
class EventRuntime:
    """What a one-shot command needs to write events and compute, as the app wires them."""

    sessions: sessionmaker[Session]
    store: EventStore
    writer: EventWriter
    compute: ComputeProperties


@contextmanager
def event_runtime(settings: Settings) -> Iterator[EventRuntime]:
    with sql_sessions(settings) as sessions:
        store = open_event_store(settings)
        writer = EventWriter(store)
        # Embedded, this process owns the store: every event written is already stored. Against a
        # server, gateways elsewhere may still be inserting; leave them the worker's margin.
        lag = 0.0 if settings.embedded_events else SERVER_WATERMARK_LAG_SECONDS
        compute = ComputeProperties(sessions, store, wall_clock_watermark(lag), owner=worker_owner())
        try:
            yield EventRuntime(sessions, store, writer, compute)
        finally:
            writer.close()
            store.close()


# --- workspaces ---------------------------------------------------------------------------------


@reporting_errors
def run_list_workspaces(settings: Settings, args: argparse.Namespace) -> int:
    with sql_sessions(settings) as sessions, sessions() as session:
        query = select(Workspace).order_by(Workspace.created_at, Workspace.id)
        if args.parent is not None:
            workspaces.get_workspace(session, args.parent)
            query = query.where(Workspace.parent_workspace_id == args.parent)
        found = [
            {
                "id": workspace.id,
                "name": workspace.name,
                "type": workspace.type.value,
                "status": workspace.status.value,
                "externalId": workspace.external_id,
                "parent": workspace.parent_workspace_id,
            }
            for workspace in session.scalars(query)
        ]
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print_table(("id", "name", "type", "status", "externalId", "parent"), found)
    return 0


@reporting_errors
def run_set_status(settings: Settings, args: argparse.Namespace) -> int:
    target = WorkspaceStatus(args.status)
    with sql_sessions(settings) as sessions, sessions.begin() as session:
        workspace = workspaces.get_workspace(session, args.workspace)
        before = workspace.status
        if target == WorkspaceStatus.TOMBSTONED:
            if before == WorkspaceStatus.PAUSED:
                # tombstone_workspace leaves anything not Active alone (it is idempotent that way);
                # a paused workspace is tombstoned too, in this one transaction.
                workspace.status = WorkspaceStatus.ACTIVE
            workspaces.tombstone_workspace(session, workspace)
        elif before == WorkspaceStatus.TOMBSTONED:
            raise InvalidInput(
                "a Tombstoned workspace stays Tombstoned (its name and externalId were released); "
                "create a new workspace instead",
                field="status",
            )
        else:
            workspace.status = target
    print(f"workspace {workspace.id}: {before.value} -> {workspace.status.value}")
    return 0


# --- keys ---------------------------------------------------------------------------------------


@reporting_errors
def run_create_key(settings: Settings, args: argparse.Namespace) -> int:
    with sql_sessions(settings) as sessions, sessions.begin() as session:
        workspace = workspaces.get_workspace(session, args.workspace)
        if workspace.status == WorkspaceStatus.TOMBSTONED:
            raise InvalidInput("workspace is Tombstoned: its keys can never work", field="workspace")
        if args.kind == "admin":
            issued = credentials.create_admin_api_key(session, workspace.id, args.name)
            lines = [f"admin API key id: {issued.id}", f"admin API key:    {issued.api_key}  (shown once)"]
        else:
            lines = _create_write_key(session, workspace, args.name)
    # Printed once the transaction committed: a key that was not stored is never shown.
    for line in lines:
        print(line)
    return 0


def _create_write_key(session: Session, workspace: Workspace, name: str) -> list[str]:
    if workspace.type == WorkspaceType.PARENT:
        raise InvalidInput(
            "a Parent workspace receives no events: its children have write keys", field="kind"
        )
    if name in {secret.name for secret in credentials.list_write_keys(session, workspace.id)}:
        # Like PUT settings/write-keys, creating is idempotent; write keys are public, so it is shown.
        print(f"feedgate: write key {name!r} already exists; printing it", file=sys.stderr)
    secret, _ = credentials.get_or_create_write_key(session, workspace.id, name)
    assert secret.value is not None  # write keys are always created with a value
    header = credentials.write_key_header(secret.id, secret.value)
    return [f"write key id: {secret.id}", f"write key:    {header}"]


@reporting_errors
def run_list_keys(settings: Settings, args: argparse.Namespace) -> int:
    with sql_sessions(settings) as sessions, sessions() as session:
        workspace = workspaces.get_workspace(session, args.workspace)
        keys = [
            {"kind": "admin", "id": key.id, "name": key.name, "created": _iso(key.created_at)}
            for key in credentials.list_admin_keys(session, workspace.id)
        ] + [
            {"kind": "write", "id": secret.id, "name": secret.name, "created": _iso(secret.created_at)}
            for secret in credentials.list_write_keys(session, workspace.id)
        ]
    if args.json:
        print(json.dumps(keys, indent=2))
    else:
        print_table(("kind", "id", "name", "created"), keys)
    return 0


@reporting_errors
def run_delete_key(settings: Settings, args: argparse.Namespace) -> int:
    with sql_sessions(settings) as sessions, sessions.begin() as session:
        workspace = workspaces.get_workspace(session, args.workspace)
        deleted = None
        if args.kind in (None, "admin") and credentials.delete_admin_key(session, workspace.id, args.key_id):
            deleted = "admin API key"
        if deleted is None and args.kind in (None, "write"):
            write_keys = credentials.list_write_keys(session, workspace.id)
            named = [secret.name for secret in write_keys if secret.id == args.key_id]
            if named and credentials.delete_write_key(session, workspace.id, named[0]):
                deleted = "write key"
        if deleted is None:
            kind = f"{args.kind} key" if args.kind else "key"
            raise NotFound(f"workspace {workspace.id} has no {kind} with id {args.key_id}")
    print(f"deleted {deleted} {args.key_id}")
    return 0


# --- SECRET_KEY rotation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    secret_key: str
    fallbacks: tuple[str, ...]
    dropped: int

    def environment_lines(self) -> list[str]:
        return [f"SECRET_KEY={self.secret_key}", f"FEEDGATE_SECRET_KEY_FALLBACKS={','.join(self.fallbacks)}"]


def plan_rotation(current: str, fallbacks: Sequence[str], keep: int) -> Rotation:
    """A new key; the current one becomes the first fallback, the oldest fall off past `keep`.

    Published sample keys are never kept: multi-tenant mode refuses to start with one in the list.
    """
    candidates = [key for key in dict.fromkeys([current, *fallbacks]) if key not in SAMPLE_SECRET_KEYS]
    kept = tuple(candidates[:keep])
    dropped = len(set([current, *fallbacks]) - set(kept))
    return Rotation(secrets.token_urlsafe(32), kept, dropped)


@reporting_errors
def run_rotate_secret_key(settings: Settings, args: argparse.Namespace) -> int:
    rotation = plan_rotation(settings.secret_key, settings.secret_key_fallbacks, args.keep)
    if args.write:
        path = settings.data_dir / SECRET_KEY_FILE
        if not _key_file_in_use(settings, path):
            print(
                f"feedgate: --write replaces {path}, which only anonymous mode without SECRET_KEY reads; "
                "this SECRET_KEY comes from the environment: set the lines below there instead",
                file=sys.stderr,
            )
            return 2
        _replace_key_file(path, rotation.secret_key)
        print(
            f"feedgate: wrote the new key to {path}. The data dir keeps no fallback list: set "
            "FEEDGATE_SECRET_KEY_FALLBACKS as below to keep current sessions signed in",
            file=sys.stderr,
        )
    for line in rotation.environment_lines():
        print(line)
    print(
        "feedgate: set both on every gateway and worker, then restart them. New sessions are signed "
        "with the new key; sessions signed with a key in the fallback list keep working until they "
        f"expire; sessions signed with a key no longer listed end now ({rotation.dropped} key(s) dropped).",
        file=sys.stderr,
    )
    return 0


def _key_file_in_use(settings: Settings, path: Path) -> bool:
    """True when the running key is the one anonymous mode read from the data dir file."""
    if settings.auth_mode != "anonymous" or not path.is_file():
        return False
    return path.read_text().strip() == settings.secret_key


def _replace_key_file(path: Path, key: str) -> None:
    # Written beside it and renamed over it: a crash leaves the old key or the new one, never half.
    staging = path.with_name(f".{path.name}.new")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    os.replace(staging, path)


# --- compute and manual segments ------------------------------------------------------------------


@reporting_errors
def run_recompute(settings: Settings, args: argparse.Namespace) -> int:
    with event_runtime(settings) as runtime:
        with runtime.sessions() as session:
            workspace = _computable_workspace(session, args.workspace)
            only = _known_properties(session, workspace.id, args.property) if args.property else None
            targets = [target.property_id for target in load_targets(session, workspace.id, only)]
        skipped = len(only) - len(targets) if only is not None else 0
        changed = failed = 0
        with progress("Recomputing", total=len(targets)) as bar:
            for property_id in targets:
                summary = runtime.compute.compute(workspace.id, [property_id])
                changed += summary.changed
                failed += summary.failed
                bar.advance()
    print(
        f"recomputed {len(targets) - failed} of {len(targets)} properties of workspace {workspace.id}: "
        f"{changed} changed assignments"
    )
    if failed or skipped:
        print(f"feedgate: {failed} failed and {skipped} could not be compiled (see the log)", file=sys.stderr)
        return 1
    return 0


@reporting_errors
def run_upload_segment_csv(settings: Settings, args: argparse.Namespace) -> int:
    data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    users = segment_files.parse_users_csv(data)
    with event_runtime(settings) as runtime:
        now = utcnow()
        with runtime.sessions.begin() as session:
            workspace = workspaces.get_workspace(session, args.workspace)
            segment = manual_segments.find_manual_segment(session, workspace.id, args.segment)
            # One transaction: the first chunk replaces (moves the segment to a new version), later
            # chunks append at that version; a failure leaves the segment's old version and members.
            with progress("Uploading users", total=len(users)) as bar:
                for start in range(0, max(len(users), 1), CSV_CHUNK_USERS):
                    chunk = users[start : start + CSV_CHUNK_USERS]
                    manual_segments.update_manual_segment(
                        session,
                        runtime.writer.write,
                        workspace.id,
                        segment.id,
                        [user.id for user in chunk],
                        append=args.append or start > 0,
                        now=now,
                        extra_rows=manual_segments.identify_rows(
                            workspace.id, [(user.id, user.traits) for user in chunk], now
                        ),
                    )
                    bar.advance(len(chunk))
            segment_id = segment.id
        # Membership follows at once, as after the API's upload.
        runtime.compute.compute(workspace.id, [segment_id])
    action = "appended" if args.append else "uploaded"
    print(f"{action} {len(users)} users to segment {segment_id} of workspace {workspace.id}")
    return 0


@reporting_errors
def run_import_events(settings: Settings, args: argparse.Namespace) -> int:
    # Read twice from disk (check, then write), so memory stays bounded; stdin is held in memory.
    held = sys.stdin.buffer.read().splitlines() if args.file == "-" else None

    def lines() -> Iterator[bytes]:
        if held is not None:
            yield from held
            return
        with open(args.file, "rb") as file:
            yield from file

    total = event_import.count_import_events(lines())
    with event_runtime(settings) as runtime:
        with runtime.sessions() as session:
            workspace = workspaces.get_workspace(session, args.workspace)
            if workspace.type == WorkspaceType.PARENT or workspace.status != WorkspaceStatus.ACTIVE:
                raise InvalidInput(
                    f"workspace {workspace.id} takes no events: it is {workspace.type.value},"
                    f" {workspace.status.value} (events go to an Active root or child workspace)",
                    field="workspace",
                )
        # Past events are only stored, unlike the ingest API's: a backfill must not start event-entry
        # journeys (a welcome mail for last year's sign-up). Segments take them in on the next pass.
        chunks = event_import.read_import_rows(
            workspace.id, lines(), utcnow(), chunk_events=IMPORT_CHUNK_EVENTS
        )
        written = skipped = 0
        with progress("Importing events", total=total) as bar:
            for rows, events in chunks:
                new = runtime.writer.write(rows)
                written, skipped = written + new, skipped + len(rows) - new
                bar.advance(events)
    print(
        f"imported {total} events into workspace {workspace.id}: {written} rows written,"
        f" {skipped} already stored"
    )
    return 0


def _computable_workspace(session: Session, workspace_id: str) -> Workspace:
    workspace = workspaces.get_workspace(session, workspace_id)
    if workspace.type == WorkspaceType.PARENT:
        raise InvalidInput("a Parent workspace has no events: recompute its children", field="workspace")
    if workspace.status != WorkspaceStatus.ACTIVE:
        raise InvalidInput(f"workspace is {workspace.status.value}, not Active", field="workspace")
    return workspace


def _known_properties(session: Session, workspace_id: str, ids: Sequence[str]) -> set[str]:
    # Ids are stored lowercase; a pasted uppercase UUID names the same property.
    wanted = {canonical_uuid(value) or value for value in ids}
    segments = select(Segment.id).where(Segment.workspace_id == workspace_id, Segment.id.in_(wanted))
    properties = select(UserProperty.id).where(
        UserProperty.workspace_id == workspace_id, UserProperty.id.in_(wanted)
    )
    known = set(session.scalars(segments)) | set(session.scalars(properties))
    unknown = sorted(wanted - known)
    if unknown:
        raise NotFound(f"workspace {workspace_id} has no segment or user property {', '.join(unknown)}")
    return known


# --- output and argument types --------------------------------------------------------------------


def print_table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Rows as aligned text columns; a missing value shows as `-`."""
    cells = [[str(row[column]) if row[column] is not None else "-" for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    for line in [list(columns), *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _iso(moment: Any) -> str:
    text: str = moment.isoformat(timespec="seconds")
    return text


def _key_name(value: str) -> str:
    if not value.strip() or len(value) > 200:
        raise argparse.ArgumentTypeError("a key name is 1 to 200 characters")
    return value


def _non_negative(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {value!r}")
    return int(value)
