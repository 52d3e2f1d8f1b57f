"""The audit log: who changed what, through which route, from where, with the row before and after.

The gateway attaches an `AuditContext` to each SQL session it opens for a request (`attach_audit`);
the authoriser that accepted the request fills in its `actor`. Changes are recorded in the same
transaction as the change itself, so a rolled-back request leaves no entry and a committed change
always has one.

Recording is automatic for a session whose context has an actor: after each flush, one entry per
inserted, updated or deleted ORM row (an update keeps only the columns that changed), and around an
ORM-enabled bulk `update(Model)` / `delete(Model)` statement, one entry per row it touched. Each flush
writes its entries with one batched INSERT. Sessions without an actor (the worker's) pay one dict
lookup per flush and per statement, nothing more. Mutations that change no SQL row (ClickHouse-only:
deleting users, manual segment updates) and session mints are written with `record_action`.

Nothing secret reaches the log: the columns that hold credentials, and any JSON key named like one
(`apiKey`, `password`, `clientSecret`, ...), are written as "[redacted]".
"""

from __future__ import annotations

import base64
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Table, and_, event, insert, inspect, select, tuple_
from sqlalchemy.engine import Result
from sqlalchemy.orm import InstanceState, Mapper, ORMExecuteState, Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state

from engine.errors import InvalidInput
from engine.storage.gateway_models import AuditEntry
from engine.storage.models import Workspace, new_id, utcnow

ActorType = Literal["Member", "AdminApiKey", "EmbedOccupant", "WriteKey", "Anonymous"]
ACTOR_TYPES: tuple[ActorType, ...] = ("Member", "AdminApiKey", "EmbedOccupant", "WriteKey", "Anonymous")

REDACTED = "[redacted]"
MAX_PAGE = 500

# Rows that are not authored state: the log itself, copies rebuilt from ClickHouse, and the worker's
# execution state (sends owed, journey runs). The resource change that caused them is logged instead.
UNAUDITED_TABLES = frozenset(
    {"audit_entries", "segment_assignments", "user_property_assignments", "message_sends", "journey_runs"}
)
# Columns whose value is a credential, by table; every other column is checked by name (`_is_secret`).
SECRET_COLUMNS: Mapping[str, frozenset[str]] = {
    "secrets": frozenset({"value", "config_value"}),
    "admin_api_keys": frozenset({"key_hash"}),
    "segment_io_configurations": frozenset({"shared_secret"}),
}
# Bumped on every write; an update's diff leaves it out so a change shows only what the caller changed.
NOISE_COLUMNS = frozenset({"updated_at"})

_SECRET_WORDS = ("secret", "password", "passwd", "apikey", "privatekey", "credential", "signingkey")
_SECRET_SUFFIXES = ("token", "hash", "webhookkey", "authorization")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_WORKSPACE_MAPPER: Mapper[Workspace] = inspect(Workspace)
_AUDIT_TABLE = cast(Table, AuditEntry.__table__)


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str | None


@dataclass
class AuditContext:
    """One request's audit facts; `actor` is set once an authoriser accepts the request."""

    action: str
    ip: str | None
    actor: Actor | None = None


def attach_audit(session: Session, context: AuditContext) -> None:
    session.info["audit"] = context


def session_context(session: Session) -> AuditContext | None:
    """The context attached to `session`, or None (a worker's session)."""
    context: AuditContext | None = session.info.get("audit")
    return context


def count_recorded(session: Session) -> int:
    """How many entries `session` has written so far, so a request that changed no SQL row (a
    ClickHouse-only mutation) can tell it still owes one and call `record_action`."""
    count: int = session.info.get("audit_recorded", 0)
    return count


@dataclass(frozen=True)
class Change:
    """One row's change, before it is an entry: `before` None for an insert, `after` None for a delete."""

    workspace_id: str
    parent_workspace_id: str | None
    resource_type: str
    resource_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    action: str | None = None
    # True when `parent_workspace_id` came with the row (a Workspace row); else it is looked up.
    parent_known: bool = False


def record_action(
    session: Session,
    context: AuditContext | None = None,
    *,
    workspace_id: str,
    action: str | None = None,
    resource_type: str | None,
    resource_id: str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> bool:
    """Write one explicit entry in the session's transaction: a session mint, or a mutation that
    touched no SQL row. `context` defaults to the session's; `action` to the context's (the route).
    `before`/`after` are cleaned like row values (secret-named keys redacted, values made JSON).

    Returns False, writing nothing, when there is no context or it has no actor (no actor, no entry).
    """
    context = context if context is not None else session_context(session)
    if context is None or context.actor is None:
        return False
    change = Change(
        workspace_id=workspace_id,
        parent_workspace_id=None,
        resource_type=resource_type or "",
        resource_id=resource_id,
        before=_clean_mapping(before) if before is not None else None,
        after=_clean_mapping(after) if after is not None else None,
        action=action,
    )
    _write(session, context, [change])
    return True


# --- the listeners -------------------------------------------------------------------------------


def _actor_context(session: Session) -> AuditContext | None:
    context = session.info.get("audit")
    return context if context is not None and context.actor is not None else None


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, flush_context: UOWTransaction) -> None:
    # After the flush every new row has its key, while new/dirty/deleted and attribute history still
    # describe what the flush did; the entries join the same transaction.
    context = _actor_context(session)
    if context is None:
        return
    changes: list[Change] = []
    for instance in session.new:
        state = instance_state(instance)
        if _audited(state.mapper):
            changes.append(_row_change(state, before=None, after=_snapshot(state)))
    for instance in session.dirty:
        state = instance_state(instance)
        if _audited(state.mapper):
            diff = _diff(state)
            if diff is not None:
                changes.append(_row_change(state, before=diff[0], after=diff[1]))
    for instance in session.deleted:
        state = instance_state(instance)
        if _audited(state.mapper):
            changes.append(_row_change(state, before=_snapshot(state), after=None))
    _write(session, context, [change for change in changes if change.workspace_id])


@event.listens_for(Session, "do_orm_execute")
def _record_bulk_statement(state: ORMExecuteState) -> Result[Any] | None:
    # `update(Model).where(...)` and `delete(Model).where(...)` bypass the flush, so their rows are read
    # before (and, for an update, after) the statement runs, in the same transaction.
    if not (state.is_update or state.is_delete):
        return None
    context = _actor_context(state.session)
    mapper = state.bind_mapper
    if context is None or mapper is None or not _audited(mapper):
        return None
    session = state.session
    if session.autoflush:
        session.flush()
    table = mapper.local_table
    assert isinstance(table, Table)
    where = state.statement.whereclause  # type: ignore[attr-defined]
    connection = session.connection()
    query = select(table) if where is None else select(table).where(where)
    before_rows = [dict(row) for row in connection.execute(query).mappings()]
    result = state.invoke_statement()
    if not before_rows:
        return result
    changes: list[Change] = []
    if state.is_delete:
        changes = [_table_change(mapper, row, before=row, after=None) for row in before_rows]
    else:
        after_by_key = {_key_of(table, row): row for row in _reread(connection, table, before_rows)}
        for row in before_rows:
            after = after_by_key.get(_key_of(table, row))
            if after is None:
                continue
            changed = [name for name in row if name not in NOISE_COLUMNS and row[name] != after[name]]
            if changed:
                changes.append(
                    _table_change(
                        mapper,
                        row,
                        before={name: row[name] for name in changed},
                        after={name: after[name] for name in changed},
                    )
                )
    _write(session, context, [change for change in changes if change.workspace_id])
    return result


# --- rows to changes -----------------------------------------------------------------------------


def _audited(mapper: Mapper[Any]) -> bool:
    table = mapper.local_table
    return isinstance(table, Table) and table.name not in UNAUDITED_TABLES


def _snapshot(state: InstanceState[Any]) -> dict[str, Any]:
    # Only what is loaded: reading an unloaded attribute of a deleted row would query for it.
    table_name = _table_name(state.mapper)
    loaded = state.dict
    return {
        prop.key: _clean_column(table_name, prop.key, loaded[prop.key])
        for prop in state.mapper.column_attrs
        if prop.key in loaded
    }


def _diff(state: InstanceState[Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The changed columns' old and new values; an old value never loaded is left out of `before`."""
    table_name = _table_name(state.mapper)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for prop in state.mapper.column_attrs:
        if prop.key in NOISE_COLUMNS:
            continue
        history = state.attrs[prop.key].history
        if not history.has_changes():
            continue
        if history.deleted:
            before[prop.key] = _clean_column(table_name, prop.key, history.deleted[0])
        after[prop.key] = _clean_column(table_name, prop.key, history.added[0] if history.added else None)
    return (before, after) if after else None


def _row_change(
    state: InstanceState[Any], *, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Change:
    mapper = state.mapper
    loaded = state.dict
    key_values = [loaded.get(mapper.get_property_by_column(column).key) for column in mapper.primary_key]
    resource_id = _join_key(key_values)
    if mapper.class_ is Workspace:
        return Change(
            workspace_id=resource_id or "",
            parent_workspace_id=loaded.get("parent_workspace_id"),
            parent_known=True,
            resource_type="Workspace",
            resource_id=resource_id,
            before=before,
            after=after,
        )
    workspace_id = loaded.get("workspace_id")
    return Change(
        workspace_id=workspace_id if isinstance(workspace_id, str) else "",
        parent_workspace_id=None,
        resource_type=mapper.class_.__name__,
        resource_id=resource_id,
        before=before,
        after=after,
    )


def _table_change(
    mapper: Mapper[Any],
    row: Mapping[str, Any],
    *,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> Change:
    table = mapper.local_table
    assert isinstance(table, Table)
    resource_id = _join_key([row[column.name] for column in table.primary_key.columns])
    is_workspace = mapper.class_ is Workspace
    workspace_id = resource_id if is_workspace else row.get("workspace_id")
    return Change(
        workspace_id=workspace_id if isinstance(workspace_id, str) else "",
        parent_workspace_id=row.get("parent_workspace_id") if is_workspace else None,
        parent_known=is_workspace,
        resource_type=mapper.class_.__name__,
        resource_id=resource_id,
        before=_clean_row(table.name, before) if before is not None else None,
        after=_clean_row(table.name, after) if after is not None else None,
    )


def _reread(connection: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    columns = list(table.primary_key.columns)
    if len(columns) == 1:
        where: ColumnElement[bool] = columns[0].in_([row[columns[0].name] for row in rows])
    else:
        where = tuple_(*columns).in_([tuple(row[c.name] for c in columns) for row in rows])
    return [dict(row) for row in connection.execute(select(table).where(where)).mappings()]


def _key_of(table: Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column.name] for column in table.primary_key.columns)


def _join_key(values: Sequence[Any]) -> str | None:
    if any(value is None for value in values):
        return None
    return ":".join(str(value) for value in values)


def _table_name(mapper: Mapper[Any]) -> str:
    table = mapper.local_table
    return table.name if isinstance(table, Table) else ""


# --- writing -------------------------------------------------------------------------------------


def _write(session: Session, context: AuditContext, changes: Sequence[Change]) -> None:
    if not changes:
        return
    actor = context.actor
    assert actor is not None
    parents = _parents_of(session, {c.workspace_id for c in changes if not c.parent_known})
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "workspace_id": change.workspace_id,
            "parent_workspace_id": (
                change.parent_workspace_id if change.parent_known else parents.get(change.workspace_id)
            ),
            "actor_type": actor.type,
            "actor_id": actor.id,
            "action": change.action or context.action,
            "resource_type": change.resource_type or None,
            "resource_id": change.resource_id,
            "before": change.before,
            "after": change.after,
            "ip": context.ip,
            "created_at": now,
        }
        for change in changes
    ]
    # A Core INSERT on the session's connection: one batch, and no ORM object for the flush to chase.
    session.connection().execute(insert(_AUDIT_TABLE), rows)
    session.info["audit_recorded"] = count_recorded(session) + len(rows)


def _parents_of(session: Session, workspace_ids: Iterable[str]) -> dict[str, str | None]:
    """Each workspace's parent: from the identity map when loaded (the authoriser loaded the target),
    else one query; remembered for the session's later flushes."""
    cache: dict[str, str | None] = session.info.setdefault("audit_parents", {})
    missing: list[str] = []
    for workspace_id in workspace_ids:
        if workspace_id in cache:
            continue
        loaded = session.identity_map.get(_WORKSPACE_MAPPER.identity_key_from_primary_key((workspace_id,)))
        if isinstance(loaded, Workspace) and "parent_workspace_id" in instance_state(loaded).dict:
            cache[workspace_id] = loaded.parent_workspace_id
        else:
            missing.append(workspace_id)
    if missing:
        query = select(Workspace.id, Workspace.parent_workspace_id).where(Workspace.id.in_(missing))
        found: dict[str, str | None] = {row[0]: row[1] for row in session.connection().execute(query)}
        for workspace_id in missing:
            cache[workspace_id] = found.get(workspace_id)
    return cache


# --- cleaning values -----------------------------------------------------------------------------


def _is_secret(name: str) -> bool:
    """Whether a column or JSON key is named like a credential (an id of one, `secret_id`, is not)."""
    word = _NON_ALNUM.sub("", name.lower())
    if word.endswith("id") or word.endswith("ids"):
        return False
    return any(part in word for part in _SECRET_WORDS) or word.endswith(_SECRET_SUFFIXES)


def _clean_column(table_name: str, name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in SECRET_COLUMNS.get(table_name, ()) or _is_secret(name):
        return REDACTED
    return _clean_value(value)


def _clean_row(table_name: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _clean_column(table_name, name, value) for name, value in row.items()}


def _clean_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(key): (REDACTED if value is not None and _is_secret(str(key)) else _clean_value(value))
        for key, value in values.items()
    }


def _clean_value(value: Any) -> Any:
    """`value` as JSON: enums as their values, datetimes as ISO 8601, secret-named keys redacted."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, enum.Enum):
        return _clean_value(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return _clean_mapping(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean_value(item) for item in value]
    return str(value)


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first; `next_cursor` reads the next (older) page, None on the last."""

    entries: list[AuditEntry]
    next_cursor: str | None


def list_audit_entries(
    session: Session,
    viewer_workspace_id: str,
    *,
    workspace_id: str | None = None,
    actor_type: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> AuditPage:
    """The entries of the viewer's workspace and its children (only those, whatever the filters),
    newest first. `workspace_id` narrows to one of them; `since` is inclusive, `until` exclusive.

    :raises InvalidInput: a cursor this function did not hand out, or a limit outside 1..500.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    filters: list[ColumnElement[bool]] = []
    if cursor is not None:
        filters.append(AuditEntry.seq < _parse_cursor(cursor))
    for column, wanted in (
        (AuditEntry.actor_type, actor_type),
        (AuditEntry.actor_id, actor_id),
        (AuditEntry.action, action),
        (AuditEntry.resource_type, resource_type),
        (AuditEntry.resource_id, resource_id),
    ):
        if wanted is not None:
            filters.append(column == wanted)
    if since is not None:
        filters.append(AuditEntry.created_at >= since)
    if until is not None:
        filters.append(AuditEntry.created_at < until)
    # One indexed scope per query ((workspace_id, seq) and (parent_workspace_id, seq)), merged here,
    # rather than an OR the planner may answer by walking the whole log.
    if workspace_id is None:
        scopes = [
            AuditEntry.workspace_id == viewer_workspace_id,
            AuditEntry.parent_workspace_id == viewer_workspace_id,
        ]
    elif workspace_id == viewer_workspace_id:
        scopes = [AuditEntry.workspace_id == viewer_workspace_id]
    else:
        scopes = [
            and_(
                AuditEntry.workspace_id == workspace_id, AuditEntry.parent_workspace_id == viewer_workspace_id
            )
        ]
    found: list[AuditEntry] = []
    for scope in scopes:
        query = select(AuditEntry).where(scope, *filters).order_by(AuditEntry.seq.desc()).limit(limit + 1)
        found.extend(session.scalars(query))
    found.sort(key=lambda entry: entry.seq, reverse=True)
    page = found[:limit]
    next_cursor = str(page[-1].seq) if len(found) > limit else None
    return AuditPage(page, next_cursor)


def _parse_cursor(cursor: str) -> int:
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return int(cursor)
