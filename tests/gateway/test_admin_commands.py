"""The operator commands (`feedgate admin ...`, `feedgate bootstrap`) and their progress bar, run
through the argparse parser the `feedgate` command builds, against embedded SQLite and chdb.

Handlers are called in-process (no `feedgate` subprocess); each test checks what the operator reads
on stdout/stderr and what the command changed in the database or the event store.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import credentials, segments, workspaces
from engine.event_writer import EventWriter
from engine.events import build_rows
from engine.storage import make_engine, make_session_factory
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType, utcnow
from engine.storage.resource_models import ComputedPropertyStatus
from gateway import operator
from gateway.admin_commands import add_admin_commands, plan_rotation
from gateway.app import open_event_store
from gateway.bootstrap_command import add_bootstrap_command
from gateway.progress import progress
from gateway.settings import SAMPLE_SECRET_KEYS, Settings
from gateway.tokens import InvalidToken, Purpose, TokenSigner

Run = Callable[..., int]
MANUAL = {"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []}
PRO_PLAN = {
    "entryNode": {"id": "1", "type": "Trait", "path": "plan", "operator": {"type": "Equals", "value": "pro"}},
    "nodes": [],
}


def build_parser() -> argparse.ArgumentParser:
    """The shape of gateway.cli.build_parser: an `admin` group and top-level commands."""
    parser = argparse.ArgumentParser(prog="feedgate")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("admin").add_subparsers(dest="action", required=True)
    add_admin_commands(admin)
    add_bootstrap_command(commands)
    return parser


@pytest.fixture
def run(settings: Settings) -> Run:
    parser = build_parser()

    def run_command(*argv: str, using: Settings = settings) -> int:
        args = parser.parse_args(argv)
        result: int = args.handler(using, args)
        return result

    return run_command


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the database the commands use (the settings' SQLite file)."""
    sql_engine = make_engine(settings.database_url)
    yield make_session_factory(sql_engine)
    sql_engine.dispose()


@pytest.fixture
def root(settings: Settings) -> str:
    return operator.run_create_workspace(settings, "Bakery", WorkspaceType.ROOT).workspace_id


def printed_value(output: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}:\s+(\S+)", output, re.MULTILINE)
    assert match, f"no {label!r} line in {output!r}"
    return match.group(1)


# --- workspaces ---------------------------------------------------------------------------------


def test_list_workspaces_shows_each_workspace_and_filters_by_parent(
    run: Run, settings: Settings, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    parent_id = operator.run_create_workspace(settings, "SaaS", WorkspaceType.PARENT).workspace_id
    with db.begin() as session:
        parent = workspaces.get_workspace(session, parent_id)
        child_id = workspaces.upsert_child_workspace(session, parent, "Acme", "acme-1").id
    capsys.readouterr()

    assert run("admin", "list-workspaces", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "id": parent_id,
            "name": "SaaS",
            "type": "Parent",
            "status": "Active",
            "externalId": None,
            "parent": None,
        },
        {
            "id": child_id,
            "name": "Acme",
            "type": "Child",
            "status": "Active",
            "externalId": "acme-1",
            "parent": parent_id,
        },
    ]

    assert run("admin", "list-workspaces", "--parent", parent_id) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "name", "type", "status", "externalId", "parent"]
    assert [line.split() for line in table[1:]] == [
        [child_id, "Acme", "Child", "Active", "acme-1", parent_id]
    ]


def test_list_workspaces_of_an_unknown_parent_is_an_error(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("admin", "list-workspaces", "--parent", "no-such-workspace") == 1
    assert "workspace not found" in capsys.readouterr().err


def test_pausing_stops_credentials_and_resuming_restores_them(
    run: Run, settings: Settings, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    created = operator.run_create_workspace(settings, "Bakery", WorkspaceType.ROOT)

    assert run("admin", "set-status", "--workspace", created.workspace_id, "--status", "Paused") == 0
    assert capsys.readouterr().out.strip() == f"workspace {created.workspace_id}: Active -> Paused"
    with db() as session:
        assert credentials.find_admin_key(session, created.admin_api_key) is None

    assert run("admin", "set-status", "--workspace", created.workspace_id, "--status", "Active") == 0
    with db() as session:
        assert credentials.find_admin_key(session, created.admin_api_key) is not None


def test_tombstoning_releases_the_name_and_is_final(
    run: Run, root: str, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    # From Paused too: tombstoning is not only for Active workspaces.
    assert run("admin", "set-status", "--workspace", root, "--status", "Paused") == 0
    assert run("admin", "set-status", "--workspace", root, "--status", "Tombstoned") == 0
    with db() as session:
        workspace = workspaces.get_workspace(session, root)
        assert (workspace.status, workspace.name) == (WorkspaceStatus.TOMBSTONED, "DfTombstoned-Bakery")
    capsys.readouterr()

    assert run("admin", "set-status", "--workspace", root, "--status", "Active") == 1
    assert "stays Tombstoned" in capsys.readouterr().err
    with db() as session:
        assert workspaces.get_workspace(session, root).status == WorkspaceStatus.TOMBSTONED


# --- keys ---------------------------------------------------------------------------------------


def test_an_admin_key_is_printed_once_listed_without_secret_and_deleted(
    run: Run, root: str, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("admin", "create-key", "--workspace", root, "--kind", "admin", "--name", "ci") == 0
    out = capsys.readouterr().out
    api_key, key_id = printed_value(out, "admin API key"), printed_value(out, "admin API key id")
    with db() as session:
        found = credentials.find_admin_key(session, api_key)
        assert found is not None and (found[0].id, found[1].id) == (key_id, root)

    assert run("admin", "list-keys", "--workspace", root, "--json") == 0
    listing = capsys.readouterr().out
    assert api_key not in listing
    keys = json.loads(listing)
    assert {(key["kind"], key["name"]) for key in keys} == {
        ("admin", "operator"),
        ("admin", "ci"),
        ("write", "default-write-key"),
    }
    assert {key["id"] for key in keys if key["name"] == "ci"} == {key_id}

    assert run("admin", "delete-key", "--workspace", root, "--key-id", key_id) == 0
    assert capsys.readouterr().out.strip() == f"deleted admin API key {key_id}"
    with db() as session:
        assert credentials.find_admin_key(session, api_key) is None


def test_a_write_key_authenticates_until_deleted(
    run: Run, root: str, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("admin", "create-key", "--workspace", root, "--kind", "write", "--name", "mobile") == 0
    out = capsys.readouterr().out
    header = out.split("write key:", 1)[1].strip()
    key_id = printed_value(out, "write key id")
    with db() as session:
        assert credentials.authenticate_write_key(session, header) == root

    assert run("admin", "list-keys", "--workspace", root) == 0
    table = capsys.readouterr().out
    assert "mobile" in table and header.split()[1] not in table

    assert run("admin", "delete-key", "--workspace", root, "--key-id", key_id, "--kind", "write") == 0
    with db() as session, pytest.raises(credentials.InvalidWriteKey):
        credentials.authenticate_write_key(session, header)


def test_key_commands_name_what_is_wrong(
    run: Run, settings: Settings, root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("admin", "delete-key", "--workspace", root, "--key-id", "nope", "--kind", "admin") == 1
    assert f"workspace {root} has no admin key with id nope" in capsys.readouterr().err

    assert run("admin", "create-key", "--workspace", root, "--kind", "admin", "--name", "operator") == 1
    assert "already exists" in capsys.readouterr().err

    parent = operator.run_create_workspace(settings, "SaaS", WorkspaceType.PARENT).workspace_id
    assert run("admin", "create-key", "--workspace", parent, "--kind", "write", "--name", "w") == 1
    assert "Parent workspace receives no events" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        run("admin", "create-key", "--workspace", root, "--kind", "root", "--name", "x")
    assert "--kind" in capsys.readouterr().err


# --- SECRET_KEY rotation ------------------------------------------------------------------------


def read_rotation(output: str) -> dict[str, str]:
    lines = output.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["SECRET_KEY", "FEEDGATE_SECRET_KEY_FALLBACKS"]
    return dict(line.split("=", 1) for line in lines)


def test_rotation_keeps_current_sessions_valid_and_drops_the_oldest_key(
    run: Run, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    current = dataclasses.replace(settings, secret_key="key-3", secret_key_fallbacks=("key-2", "key-1"))
    keys = ("key-3", "key-2", "key-1")
    signed_with = {key: TokenSigner(key).sign(Purpose.EMBEDDED_SESSION, {"k": key}) for key in keys}

    assert run("admin", "rotate-secret-key", using=current) == 0
    captured = capsys.readouterr()
    env = read_rotation(captured.out)
    assert env["FEEDGATE_SECRET_KEY_FALLBACKS"] == "key-3,key-2"
    assert len(env["SECRET_KEY"]) >= 43 and env["SECRET_KEY"] not in keys
    assert "1 key(s) dropped" in captured.err

    # The printed lines are what the gateway reads at start-up.
    rotated = Settings.from_environ({"FEEDGATE_DATA_DIR": str(settings.data_dir), **env})
    signer = TokenSigner(rotated.secret_key, rotated.secret_key_fallbacks)
    for key in ("key-3", "key-2"):
        assert signer.load(Purpose.EMBEDDED_SESSION, signed_with[key], max_age=60)[0] == {"k": key}
    with pytest.raises(InvalidToken):
        signer.load(Purpose.EMBEDDED_SESSION, signed_with["key-1"], max_age=60)
    fresh = signer.sign(Purpose.EMBEDDED_SESSION, {"k": "new"})
    assert TokenSigner(env["SECRET_KEY"]).load(Purpose.EMBEDDED_SESSION, fresh, max_age=60)[0] == {"k": "new"}


def test_rotation_with_keep_zero_ends_every_session_and_never_keeps_a_sample_key() -> None:
    assert plan_rotation("key-3", ("key-2",), 0).fallbacks == ()
    sample = next(iter(SAMPLE_SECRET_KEYS))
    rotation = plan_rotation(sample, ("key-2",), 2)
    assert rotation.fallbacks == ("key-2",) and rotation.dropped == 1


def test_rotation_write_replaces_the_anonymous_key_file(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"FEEDGATE_DATA_DIR": str(tmp_path / "anonymous")}
    before = Settings.from_environ(environ)
    old_token = TokenSigner(before.secret_key).sign(Purpose.MEMBER_SESSION, {"m": 1})

    assert run("admin", "rotate-secret-key", "--write", using=before) == 0
    env = read_rotation(capsys.readouterr().out)
    assert env["FEEDGATE_SECRET_KEY_FALLBACKS"] == before.secret_key
    after = Settings.from_environ(
        {**environ, "FEEDGATE_SECRET_KEY_FALLBACKS": env["FEEDGATE_SECRET_KEY_FALLBACKS"]}
    )
    assert after.secret_key == env["SECRET_KEY"] != before.secret_key
    signer = TokenSigner(after.secret_key, after.secret_key_fallbacks)
    assert signer.load(Purpose.MEMBER_SESSION, old_token, max_age=60)[0] == {"m": 1}


def test_rotation_write_refuses_a_key_from_the_environment(
    run: Run, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("admin", "rotate-secret-key", "--write") == 2
    captured = capsys.readouterr()
    assert "comes from the environment" in captured.err and captured.out == ""
    assert not (settings.data_dir / "secret_key").exists()


# --- recompute and manual segments --------------------------------------------------------------


def segment_members(db: sessionmaker[Session], segment_id: str) -> set[str]:
    with db() as session:
        return set(
            session.scalars(
                select(SegmentAssignment.user_id).where(
                    SegmentAssignment.segment_id == segment_id, SegmentAssignment.in_segment.is_(True)
                )
            )
        )


def add_segment(db: sessionmaker[Session], workspace_id: str, name: str, definition: dict[str, Any]) -> str:
    with db.begin() as session:
        upsert = segments.SegmentUpsert(
            name=name, definition=definition, status=ComputedPropertyStatus.RUNNING
        )
        return segments.upsert_segment(session, workspace_id, upsert).id


def test_recompute_assigns_segment_members_with_a_progress_line(
    run: Run, settings: Settings, root: str, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = add_segment(db, root, "Pro users", PRO_PLAN)
    store = open_event_store(settings)
    writer = EventWriter(store)
    now = utcnow()
    for user, plan in (("ann", "pro"), ("bob", "free"), ("cyd", "pro")):
        writer.write(
            build_rows(
                root, "identify", {"messageId": f"m-{user}", "userId": user, "traits": {"plan": plan}}, now
            )
        )
    writer.close()
    store.close()
    assert segment_members(db, segment_id) == set()
    capsys.readouterr()

    assert run("admin", "recompute", "--workspace", root, "--property", segment_id) == 0
    captured = capsys.readouterr()
    assert segment_members(db, segment_id) == {"ann", "cyd"}
    assert captured.out.startswith(f"recomputed 1 of 1 properties of workspace {root}")
    # stderr is not a terminal here: one plain line, no carriage returns.
    assert re.fullmatch(r"Recomputing: done: 1/1 in [0-9.]+s\n", captured.err)

    assert run("admin", "recompute", "--workspace", root) == 0
    assert re.search(r"recomputed (\d+) of \1 properties", capsys.readouterr().out)


def test_recompute_names_an_unknown_property(run: Run, root: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("admin", "recompute", "--workspace", root, "--property", "nope") == 1
    assert "no segment or user property nope" in capsys.readouterr().err


def test_csv_upload_replaces_then_appends_manual_segment_members(
    run: Run, root: str, tmp_path: Path, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = add_segment(db, root, "Hand-picked", MANUAL)
    first = tmp_path / "first.csv"
    first.write_text("id,email\nu1,u1@example.com\nu2,u2@example.com\n")
    second = tmp_path / "second.csv"
    second.write_text("id\nu3\n")

    assert run("admin", "upload-segment-csv", "--workspace", root, "--segment", segment_id, str(first)) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"uploaded 2 users to segment {segment_id} of workspace {root}"
    assert captured.err.startswith("Uploading users: done: 2/2")
    assert segment_members(db, segment_id) == {"u1", "u2"}

    argv = ("admin", "upload-segment-csv", "--workspace", root, "--segment", segment_id)
    assert run(*argv, "--append", str(second)) == 0
    assert segment_members(db, segment_id) == {"u1", "u2", "u3"}

    assert run(*argv, str(second)) == 0
    assert segment_members(db, segment_id) == {"u3"}


def test_csv_upload_refuses_bad_files_and_non_manual_segments(
    run: Run, root: str, tmp_path: Path, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    manual = add_segment(db, root, "Hand-picked", MANUAL)
    computed = add_segment(db, root, "Pro users", PRO_PLAN)
    no_id = tmp_path / "no-id.csv"
    no_id.write_text("email\na@example.com\n")
    good = tmp_path / "good.csv"
    good.write_text("id\nu1\n")
    argv = ("admin", "upload-segment-csv", "--workspace", root, "--segment")

    assert run(*argv, manual, str(no_id)) == 1
    assert 'csv must have "id" header' in capsys.readouterr().err
    assert run(*argv, manual, str(tmp_path / "missing.csv")) == 1
    assert "missing.csv" in capsys.readouterr().err
    assert run(*argv, computed, str(good)) == 1
    assert "manual entry node" in capsys.readouterr().err
    assert segment_members(db, manual) == set()


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_twice_makes_one_workspace_and_stores_each_sample_event_once(
    run: Run, settings: Settings, db: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("bootstrap", "--workspace-name", "Sandbox", "--sample-events", "12") == 0
    first = capsys.readouterr()
    workspace_id = printed_value(first.out, "workspace id")
    admin_key = printed_value(first.out, "admin API key")
    assert "sample events: 12 stored, 0 were stored already" in first.out
    assert first.err.startswith("Seeding sample events: done: 12/12")

    assert run("bootstrap", "--workspace-name", "Sandbox", "--sample-events", "12") == 0
    second = capsys.readouterr()
    assert printed_value(second.out, "workspace id") == workspace_id
    assert "exists already" in second.out and "admin API key" not in second.out
    assert "sample events: 0 stored, 12 were stored already" in second.out

    with db() as session:
        named = session.scalars(select(Workspace.id).where(Workspace.name == "Sandbox")).all()
        assert named == [workspace_id]
        assert credentials.find_admin_key(session, admin_key) is not None
    store = open_event_store(settings)
    try:
        counts = store.query(
            "SELECT toString(event_type), count() FROM user_events_v2"
            " WHERE workspace_id = {workspace:String} GROUP BY event_type ORDER BY 1",
            {"workspace": workspace_id},
        )
    finally:
        store.close()
    # Five events per sample user: an identify, then four track events.
    assert [tuple(row) for row in counts] == [("identify", 3), ("track", 9)]


def test_bootstrap_uses_workspace_name_and_will_not_change_a_workspace_type(
    run: Run, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    named = dataclasses.replace(settings, workspace_name="From Env")
    assert run("bootstrap", using=named) == 0
    assert "created 'From Env'" in capsys.readouterr().out

    assert run("bootstrap", "--workspace-type", "parent", using=named) == 1
    assert "exists with type Root, not Parent" in capsys.readouterr().err
    assert run("bootstrap", "--workspace-type", "parent", "--sample-events", "3") == 2
    assert "needs a root workspace" in capsys.readouterr().err


# --- progress bar -------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """An in-memory stream that says it is a terminal, as stderr does in an operator's shell."""

    def isatty(self) -> bool:
        return True


def test_progress_redraws_in_place_on_a_terminal() -> None:
    stream = Terminal()
    with progress("Loading", total=4, stream=stream) as bar:
        for _ in range(4):
            bar.advance()
    text = stream.getvalue()
    assert text.startswith("\rLoading [") and text.endswith("\n")
    assert "\n" not in text[:-1]
    assert text.rstrip("\n").rsplit("\r", 1)[1] == f"Loading [{'#' * 30}] 100% 4/4"


def test_progress_writes_one_plain_line_elsewhere_and_says_when_a_job_failed() -> None:
    stream = io.StringIO()
    with progress("Loading", total=10, stream=stream) as bar:
        bar.advance(10)
    assert re.fullmatch(r"Loading: done: 10/10 in [0-9.]+s\n", stream.getvalue())

    failed = io.StringIO()
    with pytest.raises(RuntimeError), progress("Loading", stream=failed) as bar:
        bar.advance(3)
        raise RuntimeError("store gone")
    assert re.fullmatch(r"Loading: failed after 3 in [0-9.]+s\n", failed.getvalue())


# --- import-events ------------------------------------------------------------------------------------


def stored_events(settings: Settings, workspace_id: str) -> list[tuple[str, str]]:
    """(messageId, event or type) of every event stored for the workspace."""
    store = open_event_store(settings)
    try:
        rows = store.query(
            "SELECT message_id, if(event = '', toString(event_type), event) FROM user_events_v2"
            " WHERE workspace_id = {workspace:String} ORDER BY message_id",
            {"workspace": workspace_id},
        )
    finally:
        store.close()
    return [(str(message_id), str(event)) for message_id, event in rows]


def write_history(path: Path, *messages: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(message) + "\n" for message in messages))
    return path


HISTORY = (
    {"type": "identify", "userId": "ann", "messageId": "h-1", "traits": {"plan": "pro"}},
    {"type": "identify", "userId": "bob", "messageId": "h-2", "traits": {"plan": "free"}},
    {
        "type": "track",
        "event": "ORDER_PLACED",
        "userId": "ann",
        "messageId": "h-3",
        "timestamp": "2025-03-01T10:00:00.000Z",
        "properties": {"total": 12.5},
    },
)


def test_import_events_backfills_a_workspace_once_and_segments_take_it_in(
    run: Run,
    root: str,
    settings: Settings,
    tmp_path: Path,
    db: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pro = add_segment(db, root, "Pro users", PRO_PLAN)
    history = write_history(tmp_path / "history.ndjson", *HISTORY)

    assert run("admin", "import-events", "--workspace", root, str(history)) == 0
    captured = capsys.readouterr()
    assert (
        captured.out.strip() == f"imported 3 events into workspace {root}: 3 rows written, 0 already stored"
    )
    assert re.fullmatch(r"Importing events: done: 3/3 in [0-9.]+s\n", captured.err)
    assert stored_events(settings, root) == [
        ("h-1", "identify"),
        ("h-2", "identify"),
        ("h-3", "ORDER_PLACED"),
    ]

    # Run again (an import that stopped half-way is simply run again): nothing is stored twice.
    assert run("admin", "import-events", "--workspace", root, str(history)) == 0
    assert capsys.readouterr().out.strip().endswith("0 rows written, 3 already stored")
    assert len(stored_events(settings, root)) == 3

    assert run("admin", "recompute", "--workspace", root, "--property", pro) == 0
    assert segment_members(db, pro) == {"ann"}


def test_import_events_with_a_bad_line_writes_nothing(
    run: Run, root: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = {"type": "track", "userId": "ann", "messageId": "h-9"}  # no event name
    history = write_history(tmp_path / "history.ndjson", *HISTORY, broken)

    assert run("admin", "import-events", "--workspace", root, str(history)) == 1
    assert "1 bad line(s), nothing imported: line 4/event Field required" in capsys.readouterr().err
    assert stored_events(settings, root) == []


def test_import_events_refuses_a_parent_or_paused_workspace_and_a_missing_file(
    run: Run, root: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = operator.run_create_workspace(settings, "Agency", WorkspaceType.PARENT).workspace_id
    history = write_history(tmp_path / "history.ndjson", *HISTORY)

    assert run("admin", "import-events", "--workspace", parent, str(history)) == 1
    assert f"workspace {parent} takes no events: it is Parent, Active" in capsys.readouterr().err
    assert run("admin", "set-status", "--workspace", root, "--status", "Paused") == 0
    assert run("admin", "import-events", "--workspace", root, str(history)) == 1
    assert "it is Root, Paused" in capsys.readouterr().err
    assert run("admin", "import-events", "--workspace", root, str(tmp_path / "missing.ndjson")) == 1
    assert "missing.ndjson" in capsys.readouterr().err
    assert stored_events(settings, root) == stored_events(settings, parent) == []
