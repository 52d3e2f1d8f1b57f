"""Searching a workspace's deliveries (Dittofeed §6.6): its sent messages with their current status
(§8.2), filtered, sorted and paged by an offset cursor; their count; and the CSV download.

Sent messages come from `internal_events`, statuses from `delivery_status` (see engine.sent_messages).
Every status is joined only when the filter or the order needs it; otherwise the page is cut from
the sent messages alone and only its own statuses are looked up.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engine.resources import iso_ms
from engine.sent_messages import (
    MESSAGE_KEY,
    SENT_EVENT,
    STATUS_SQL,
    UPDATED_AT_SQL,
    Parameters,
    SentFilter,
    as_utc,
    sent_messages_sql,
    with_latest_status_sql,
)
from engine.spreadsheet_cells import csv_download
from engine.storage.event_store import EventStore

SortBy = Literal["sentAt", "status", "from", "to"]
SortDirection = Literal["Asc", "Desc"]

DEFAULT_LIMIT = 20
MAX_DOWNLOAD_ROWS = 10_000
CSV_COLUMNS = (
    "sentAt",
    "updatedAt",
    "journeyId",
    "broadcastId",
    "userId",
    "isAnonymous",
    "originMessageId",
    "triggeringMessageId",
    "templateId",
    "status",
    "variant",
)

# Unqualified: the sent messages' own columns (and the status), in either form of the page query.
_SORT_COLUMNS: dict[str, str] = {
    "sentAt": "event_time",
    "status": "status",
    "from": "delivery_from",
    "to": "delivery_to",
}
# What an item shows of its sent event, after the message id.
_DETAIL_COLUMNS = "event_time, user_id, anonymous_id, user_or_anonymous_id, triggering_message_id, properties"


@dataclass(frozen=True)
class DeliveryFilter:
    """The sent-message filters, and `statuses`: keep deliveries whose current status is one of them."""

    sent: SentFilter = field(default_factory=SentFilter)
    statuses: Sequence[str] = ()


@dataclass(frozen=True)
class DeliverySort:
    by: SortBy = "sentAt"
    direction: SortDirection = "Desc"


def search_deliveries(
    store: EventStore,
    workspace_id: str,
    where: DeliveryFilter,
    *,
    sort: DeliverySort = DeliverySort(),
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of deliveries, as `GET deliveries` answers it."""
    offset = decode_cursor(cursor)
    items = _deliveries(store, workspace_id, where, sort, limit=limit, offset=offset)
    page: dict[str, Any] = {"workspaceId": workspace_id, "items": items}
    if len(items) >= limit:
        page["cursor"] = encode_cursor(offset + limit)
    if offset > 0:
        page["previousCursor"] = encode_cursor(max(offset - limit, 0))
    return page


def count_deliveries(store: EventStore, workspace_id: str, where: DeliveryFilter) -> int:
    params = Parameters()
    sent = sent_messages_sql(workspace_id, where.sent, params, f"message_id, event_time, {MESSAGE_KEY}")
    if where.statuses:
        joined = with_latest_status_sql(sent, workspace_id, params, narrow=where.sent.is_narrow)
        sql = (
            f"SELECT count() FROM {joined}"  # noqa: S608
            f" WHERE toString({STATUS_SQL}) IN {params.bind(list(where.statuses), 'Array(String)')}"
        )
    else:
        sql = f"SELECT count() FROM ({sent})"  # noqa: S608
    [(count,)] = store.query(sql, params.values)
    return int(count)


def deliveries_csv(
    store: EventStore,
    workspace_id: str,
    where: DeliveryFilter,
    sort: DeliverySort = DeliverySort(),
) -> str:
    """The first `MAX_DOWNLOAD_ROWS` deliveries as CSV, in `CSV_COLUMNS`."""
    items = _deliveries(store, workspace_id, where, sort, limit=MAX_DOWNLOAD_ROWS, offset=0)
    return csv_download(CSV_COLUMNS, [_csv_row(item) for item in items])


def _csv_row(item: dict[str, Any]) -> list[str]:
    variant = item.get("variant")
    return [
        item["sentAt"],
        item["updatedAt"],
        item.get("journeyId") or "",
        item.get("broadcastId") or "",
        item["userId"],
        "true" if item.get("isAnonymous") else "false",
        item["originMessageId"],
        item.get("triggeringMessageId") or "",
        item.get("templateId") or "",
        item["status"],
        "" if variant is None else json.dumps(variant, separators=(",", ":"), ensure_ascii=False),
    ]


def download_file_name(today: datetime) -> str:
    return f"deliveries-{today:%Y-%m-%d}.csv"


def encode_cursor(offset: int) -> str:
    return base64.b64encode(json.dumps({"o": offset}, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset a cursor carries; an unreadable cursor starts from the beginning, as upstream does."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        offset = json.loads(base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True))["o"]
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return 0
    return offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else 0


def _deliveries(
    store: EventStore,
    workspace_id: str,
    where: DeliveryFilter,
    sort: DeliverySort,
    *,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """The page, in two statements either way.

    When neither the filter nor the order needs every message's status: the sorted sent events
    (ClickHouse reads the wide `properties` of the page's rows only), then the page's statuses by
    primary key. Else: the sorted keys of the messages joined with their statuses (narrow columns
    through the join), then the page's sent events by primary key.
    """
    params = Parameters()
    direction = "DESC" if sort.direction == "Desc" else "ASC"
    order = f"{_SORT_COLUMNS[sort.by]} {direction}"
    order += ", message_id ASC" if sort.by == "sentAt" else ", event_time DESC, message_id ASC"
    cut = f" ORDER BY {order} LIMIT {params.bind(limit, 'UInt64')} OFFSET {params.bind(offset, 'UInt64')}"
    if not where.statuses and sort.by != "status":
        sent = sent_messages_sql(workspace_id, where.sent, params, f"message_id, {_DETAIL_COLUMNS}")
        rows = store.query(sent + cut, params.values)
        statuses = _latest_statuses(store, workspace_id, [row[0] for row in rows])
        items = []
        for message_id, *sent_event in rows:
            status, updated = statuses.get(message_id, (SENT_EVENT, sent_event[0]))
            items.append(_item(message_id, status, updated, tuple(sent_event)))
        return items
    columns = f"message_id, event_time, processing_time, delivery_from, delivery_to, {MESSAGE_KEY}"
    sent = sent_messages_sql(workspace_id, where.sent, params, columns)
    keep = ""
    if where.statuses:
        keep = f" WHERE status IN {params.bind(list(where.statuses), 'Array(String)')}"
    joined = with_latest_status_sql(sent, workspace_id, params, narrow=where.sent.is_narrow)
    page = store.query(
        f"SELECT s.message_id, s.processing_time, toString({STATUS_SQL}) AS status,"  # noqa: S608
        f" {UPDATED_AT_SQL} AS updated_at FROM {joined}" + keep + cut,
        params.values,
    )
    details = _sent_details(store, workspace_id, page)
    return [
        _item(message_id, status, updated, details[message_id])
        for message_id, _, status, updated in page
        if message_id in details
    ]


def _latest_statuses(store: EventStore, workspace_id: str, ids: list[str]) -> dict[str, tuple[str, datetime]]:
    """(status, time) of those of the messages that have status events."""
    if not ids:
        return {}
    rows = store.query(
        "SELECT origin_message_id, toString(latest.3), latest.1 FROM delivery_status FINAL"
        " WHERE workspace_id = {workspace:String} AND origin_message_id IN {ids:Array(String)}",
        {"workspace": workspace_id, "ids": ids},
    )
    return {message_id: (status, updated) for message_id, status, updated in rows}


def _sent_details(
    store: EventStore, workspace_id: str, page: list[tuple[Any, ...]]
) -> dict[str, tuple[Any, ...]]:
    """The sent events of the page's (message_id, processing_time, ...) rows by id, found through the
    primary key's time range."""
    if not page:
        return {}
    rows = store.query(
        f"SELECT message_id, {_DETAIL_COLUMNS} FROM internal_events"  # noqa: S608
        " WHERE workspace_id = {workspace:String} AND event = 'DFInternalMessageSent'"
        " AND processing_time BETWEEN {first:DateTime64(3, 'UTC')} AND {last:DateTime64(3, 'UTC')}"
        " AND message_id IN {ids:Array(String)}",
        {
            "workspace": workspace_id,
            "first": min(as_utc(row[1]) for row in page),
            "last": max(as_utc(row[1]) for row in page),
            "ids": [row[0] for row in page],
        },
    )
    return {row[0]: row[1:] for row in rows}


def _item(message_id: str, status: str, updated: datetime, sent: tuple[Any, ...]) -> dict[str, Any]:
    sent_at, user_id, anonymous_id, recipient, triggering, properties = sent
    try:
        extra = json.loads(properties) if properties else {}
    except ValueError:
        extra = {}
    if not isinstance(extra, dict):
        extra = {}
    item: dict[str, Any] = {
        "sentAt": iso_ms(as_utc(sent_at)),
        "updatedAt": iso_ms(as_utc(updated)),
        "status": status,
        "userId": recipient,
        "originMessageId": message_id,
    }
    if not user_id and anonymous_id:
        item["isAnonymous"] = True
    if triggering:
        item["triggeringMessageId"] = triggering
    # The sent event's own properties (templateId, journeyId or broadcastId, variant, nodeId, runId,
    # ...) complete the item; the fields above are derived and win over a property of the same name.
    extra.pop("isAnonymous", None)
    extra.pop("triggeringMessageId", None)
    return {**item, **{key: value for key, value in extra.items() if key not in item}}
