"""Searching a workspace's events for the admin API (Dittofeed §6.7): filters, newest first, paged by
offset, with the total count, or downloaded as CSV. A parent workspace sees its children's events.

Every filter becomes a bound ``{name:Type}`` parameter; nothing from the request is pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.spreadsheet_cells import csv_download
from engine.storage.event_store import EventStore

# Dittofeed's columns for `events/download`, and how many rows one download holds at most.
DOWNLOAD_COLUMNS = (
    "messageId",
    "eventType",
    "event",
    "userId",
    "anonymousId",
    "processingTime",
    "eventTime",
    "traits",
    "properties",
)
MAX_DOWNLOAD_ROWS = 100_000


@dataclass(frozen=True)
class EventFilter:
    """What `GET /api/admin/events` narrows by; empty fields do not filter."""

    workspace_ids: Sequence[str]
    search_term: str | None = None
    user_id: str | None = None
    message_ids: Sequence[str] = ()
    start_ms: int | None = None
    end_ms: int | None = None
    events: Sequence[str] = ()
    broadcast_id: str | None = None
    journey_id: str | None = None
    event_type: str | None = None


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "count": self.count}


def search_events(
    store: EventStore, where: EventFilter, *, offset: int, limit: int, include_context: bool = False
) -> EventPage:
    """One page of matching events, newest processing time first, and how many match in all."""
    rows = _matching_events(store, where, offset=offset, limit=limit, include_context=include_context)
    clause, parameters = _where(where)
    [(count,)] = store.query(f"SELECT count() FROM user_events_v2 WHERE {clause}", parameters)  # noqa: S608
    return EventPage([_event_json(row, include_context) for row in rows], int(count))


def events_csv(store: EventStore, where: EventFilter) -> str:
    """The first MAX_DOWNLOAD_ROWS matching events, newest first, as CSV in DOWNLOAD_COLUMNS (what
    Dittofeed's `events/download` writes)."""
    rows = _matching_events(store, where, offset=0, limit=MAX_DOWNLOAD_ROWS, include_context=False)
    return csv_download(DOWNLOAD_COLUMNS, [_csv_row(row) for row in rows])


def _csv_row(row: tuple[Any, ...]) -> list[str]:
    """A row of `_matching_events` in DOWNLOAD_COLUMNS: its times written as ClickHouse writes them."""
    *named, processing_time, event_time, traits, properties = row  # message id, type, event, user ids
    return [
        *named,
        format_clickhouse_time(processing_time),
        format_clickhouse_time(event_time),
        traits,
        properties,
    ]


def download_file_name(today: datetime) -> str:
    return f"events-{today:%Y-%m-%d}.csv"


def _matching_events(
    store: EventStore, where: EventFilter, *, offset: int, limit: int, include_context: bool
) -> list[tuple[Any, ...]]:
    clause, parameters = _where(where)
    context = ", JSONExtractRaw(message_raw, 'context') AS context" if include_context else ""
    return store.query(
        "SELECT message_id, toString(event_type), event, user_id, anonymous_id, processing_time, event_time,"  # noqa: S608
        f" JSONExtractRaw(message_raw, 'traits'), JSONExtractRaw(message_raw, 'properties'){context}"
        f" FROM user_events_v2 WHERE {clause}"
        " ORDER BY processing_time DESC, message_id"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {**parameters, "limit": limit, "offset": offset},
    )


def list_trait_keys(store: EventStore, workspace_ids: Sequence[str], *, limit: int = 500) -> list[str]:
    """Distinct top-level trait names seen on identify calls, sorted."""
    rows = store.query(
        "SELECT DISTINCT arrayJoin(JSONExtractKeys(properties)) AS trait FROM user_events_v2"
        " WHERE workspace_id IN {workspaces:Array(String)} AND event_type = 'identify'"
        " ORDER BY trait LIMIT {limit:UInt32}",
        {"workspaces": list(workspace_ids), "limit": limit},
    )
    return [str(row[0]) for row in rows]


def list_event_property_keys(
    store: EventStore, workspace_ids: Sequence[str], *, limit: int = 500, include_internal: bool = True
) -> dict[str, list[str]]:
    """Top-level property names per track event name, most recently seen first. Without
    `include_internal`, feedgate's own events (`DF…`: sends and delivery statuses, usually most of a
    busy workspace's events) are skipped before their properties are parsed."""
    rows = store.query(
        "SELECT event, arrayJoin(JSONExtractKeys(properties)) AS property, max(processing_time) AS seen"
        " FROM user_events_v2"
        " WHERE workspace_id IN {workspaces:Array(String)} AND event_type = 'track'"
        " AND ({internal:Bool} OR NOT startsWith(event, 'DF'))"
        " GROUP BY event, property ORDER BY seen DESC, event, property LIMIT {limit:UInt32}",
        {"workspaces": list(workspace_ids), "limit": limit, "internal": include_internal},
    )
    properties: dict[str, list[str]] = {}
    for event, property_name, _ in rows:
        properties.setdefault(str(event), []).append(str(property_name))
    return properties


def _where(where: EventFilter) -> tuple[str, dict[str, Any]]:
    clauses = ["workspace_id IN {workspaces:Array(String)}"]
    parameters: dict[str, Any] = {"workspaces": list(where.workspace_ids)}

    def add(clause: str, **values: Any) -> None:
        clauses.append(clause)
        parameters.update(values)

    if where.search_term:
        add(
            "(toString(event_type) LIKE {like:String} OR event LIKE {like:String}"
            " OR message_id = {search:String})",
            like=f"%{_escape_like(where.search_term)}%",
            search=where.search_term,
        )
    if where.user_id:
        add("user_id = {user_id:String}", user_id=where.user_id)
    if where.message_ids:
        add("message_id IN {message_ids:Array(String)}", message_ids=list(where.message_ids))
    if where.start_ms is not None:
        add("processing_time >= {start:DateTime64(3, 'UTC')}", start=_from_epoch_ms(where.start_ms))
    if where.end_ms is not None:
        add("processing_time <= {end:DateTime64(3, 'UTC')}", end=_from_epoch_ms(where.end_ms))
    if where.events:
        add("event IN {events:Array(String)}", events=list(where.events))
    if where.broadcast_id:
        add("JSONExtractString(properties, 'broadcastId') = {broadcast:String}", broadcast=where.broadcast_id)
    if where.journey_id:
        add("JSONExtractString(properties, 'journeyId') = {journey:String}", journey=where.journey_id)
    if where.event_type:
        add("toString(event_type) = {event_type:String}", event_type=where.event_type)
    return " AND ".join(clauses), parameters


def _event_json(row: tuple[Any, ...], include_context: bool) -> dict[str, Any]:
    message_id, event_type, event, user_id, anonymous_id, processing_time, event_time = row[:7]
    traits, properties = row[7:9]
    item: dict[str, Any] = {
        "messageId": message_id,
        "eventType": event_type,
        "event": event,
        "userId": user_id or None,
        "anonymousId": anonymous_id or None,
        "processingTime": format_clickhouse_time(processing_time),
        "eventTime": format_clickhouse_time(event_time),
        "traits": traits or properties or "{}",
    }
    if include_context:
        item["context"] = row[9] or None
    return item


def format_clickhouse_time(value: datetime) -> str:
    """ClickHouse's own text form of a DateTime64(3) in UTC, as Dittofeed's API returns it."""
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _escape_like(term: str) -> str:
    # A search term is matched literally: % and _ are not wildcards to the client.
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
