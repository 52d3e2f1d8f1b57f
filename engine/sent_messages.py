"""The sent messages of a workspace as SQL: the cohort that deliveries (Dittofeed §6.6) and analysis
(§6.12) start from, and the status each message reached (§8.2).

A sent message is a `DFInternalMessageSent` event in `internal_events` that is not hidden; its message
id is the `origin_message_id` its status events point back to. Statuses come from `delivery_status`,
one aggregated row per message, kept by a materialized view as status events arrive.

Every value a caller supplies becomes a bound ``{name:Type}`` parameter through `Parameters`; the SQL
text is assembled only from constant fragments.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.storage.event_schema import DELIVERY_STATUS

SENT_EVENT = "DFInternalMessageSent"
# The states a message joined by `with_state_flags_sql` reached (no cascading: opened does not imply
# delivered).
STATES_SQL = (
    "arrayFilter((state, reached) -> reached = 1, ['sent', 'delivered', 'opened', 'clicked', 'bounced'],"
    " [toUInt8(1), st.delivered, st.opened, st.clicked, st.bounced])"
)
_STATUS_TYPE = DELIVERY_STATUS.replace("'", "\\'")
# The key `with_latest_status_sql` and `with_state_flags_sql` join a sent message on.
MESSAGE_KEY = "cityHash64(message_id) AS message_key"
# The current status of sent message `s` joined with its `st` row: the sent event when none.
STATUS_SQL = f"if(st.found = 0, CAST('{SENT_EVENT}', '{_STATUS_TYPE}'), st.latest.3)"
UPDATED_AT_SQL = "if(st.found = 0, s.event_time, st.latest.1)"
_TIME = "DateTime64(3, 'UTC')"


class Parameters:
    """Bound parameters of one statement, named in the order they are added."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, clickhouse_type: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{clickhouse_type}}}"


@dataclass(frozen=True)
class PropertyMatch:
    """`key` of a JSON object equals `value`, or is an array holding it (numbers and their text agree)."""

    key: str
    value: str | float


@dataclass(frozen=True)
class SentFilter:
    """Which sent messages to keep; an empty field does not filter."""

    journey_ids: Sequence[str] = ()
    broadcast_ids: Sequence[str] = ()
    user_ids: Sequence[str] = ()
    channels: Sequence[str] = ()
    template_ids: Sequence[str] = ()
    to: Sequence[str] = ()
    senders: Sequence[str] = ()
    providers: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    group_ids: Sequence[str] = ()
    triggering_properties: Sequence[PropertyMatch] = ()
    context_values: Sequence[PropertyMatch] = ()

    @property
    def is_narrow(self) -> bool:
        """Whether it names the journeys, broadcasts, templates, users or groups to keep: a cohort
        that is usually a small part of the workspace, whose statuses are best looked up by id."""
        return bool(
            self.journey_ids or self.broadcast_ids or self.template_ids or self.user_ids or self.group_ids
        )


# SentFilter fields matched by a column of `internal_events`, as (field, column).
_SENT_FILTER_COLUMNS = (
    ("journey_ids", "journey_id"),
    ("broadcast_ids", "broadcast_id"),
    ("user_ids", "user_or_anonymous_id"),
    ("channels", "channel_type"),
    ("template_ids", "template_id"),
    ("to", "delivery_to"),
    ("senders", "delivery_from"),
    ("providers", "JSONExtractString(properties, 'variant', 'provider', 'type')"),
)


def filter_clauses(where: SentFilter, params: Parameters, columns: Sequence[tuple[str, str]]) -> list[str]:
    """`column IN values` for each (SentFilter field, column) whose field is set, then the range of
    `processing_time`."""
    clauses = []
    for field_name, column in columns:
        values: Sequence[str] = getattr(where, field_name)
        if values:
            clauses.append(f"{column} IN {params.bind(list(values), 'Array(String)')}")
    if where.start is not None:
        clauses.append(f"processing_time >= {params.bind(where.start, _TIME)}")
    if where.end is not None:
        clauses.append(f"processing_time <= {params.bind(where.end, _TIME)}")
    return clauses


def sent_messages_sql(workspace_id: str, where: SentFilter, params: Parameters, columns: str) -> str:
    """``SELECT columns FROM internal_events`` narrowed to the workspace's matching sent messages."""
    workspace = params.bind(workspace_id, "String")
    clauses = [f"workspace_id = {workspace}", f"event = '{SENT_EVENT}'", "NOT hidden"]
    clauses += filter_clauses(where, params, _SENT_FILTER_COLUMNS)
    if where.group_ids:
        clauses.append(
            "user_or_anonymous_id IN (SELECT user_id FROM user_group_assignments"  # noqa: S608
            f" WHERE workspace_id = {workspace}"
            f" AND group_id IN {params.bind(list(where.group_ids), 'Array(String)')}"
            " GROUP BY user_id, group_id HAVING argMax(assigned, assigned_at))"
        )
    if where.triggering_properties:
        # The triggering event is any event of the workspace, found by the sent message's pointer.
        match = properties_match_sql("properties", where.triggering_properties, params)
        clauses.append(
            "triggering_message_id IN (SELECT message_id FROM user_events_v2"  # noqa: S608
            f" WHERE workspace_id = {workspace} AND message_id IN (SELECT triggering_message_id"
            f" FROM internal_events WHERE workspace_id = {workspace} AND event = '{SENT_EVENT}'"
            f" AND triggering_message_id != '') AND {match})"
        )
    if where.context_values:
        # The context is kept only in the raw message of the sent event.
        match = properties_match_sql("JSONExtractRaw(message_raw, 'context')", where.context_values, params)
        clauses.append(
            "message_id IN (SELECT message_id FROM user_events_v2"  # noqa: S608
            f" WHERE workspace_id = {workspace} AND event_type = 'track' AND event = '{SENT_EVENT}'"
            f" AND {match})"
        )
    return f"SELECT {columns} FROM internal_events WHERE {' AND '.join(clauses)}"  # noqa: S608


def with_latest_status_sql(sent: str, workspace_id: str, params: Parameters, *, narrow: bool = False) -> str:
    """`sent` (which selects `message_id` and `MESSAGE_KEY`) as `s`, left-joined as `st` with each
    message's row of `delivery_status`: `latest` (event_time, tie-break, status) and `found` (0 when it
    has none). With `narrow`, only the statuses of `sent`'s messages are read (see `_join_status_sql`)."""
    return _join_status_sql(sent, "latest", workspace_id, params, narrow=narrow)


def with_state_flags_sql(sent: str, workspace_id: str, params: Parameters, *, narrow: bool = False) -> str:
    """`sent` (which selects `message_id` and `MESSAGE_KEY`) as `s`, left-joined as `st` with whether
    each message was ever delivered, opened, clicked or bounced (0 when it has no status event)."""
    return _join_status_sql(sent, "delivered, opened, clicked, bounced", workspace_id, params, narrow=narrow)


def _join_status_sql(sent: str, columns: str, workspace_id: str, params: Parameters, *, narrow: bool) -> str:
    # Joined on a 64-bit hash of the message id: hashing numbers is about twice as fast as hashing
    # the 36-character ids, and a collision inside one workspace is beyond reach (n² / 2^65).
    # FINAL merges the rows of one message as it reads them in key order: cheaper than a GROUP BY.
    # The join reads every status of the workspace unless told otherwise; `narrow` reads only those of
    # the cohort's ids, found through the primary key (the cohort is read twice, which costs more than
    # it saves when the cohort is most of the workspace).
    keep = f" AND origin_message_id IN (SELECT message_id FROM ({sent}))" if narrow else ""  # noqa: S608
    return (
        f"({sent}) AS s LEFT ANY JOIN (SELECT cityHash64(origin_message_id) AS message_key,"  # noqa: S608
        f" {columns}, toUInt8(1) AS found FROM delivery_status FINAL"
        f" WHERE workspace_id = {params.bind(workspace_id, 'String')}{keep}) AS st"
        " ON st.message_key = s.message_key"
    )


def properties_match_sql(document: str, matches: Sequence[PropertyMatch], params: Parameters) -> str:
    """All keys match (AND); a key given several values matches any of them (OR)."""
    by_key: dict[str, list[str | float]] = {}
    for match in matches:
        by_key.setdefault(match.key, []).append(match.value)
    keys = []
    for key, values in by_key.items():
        bound_key = params.bind(key, "String")
        options = [_value_match_sql(document, bound_key, value, params) for value in values]
        keys.append("(" + " OR ".join(options) + ")")
    return "(" + " AND ".join(keys) + ")"


def _value_match_sql(document: str, key: str, value: str | float, params: Parameters) -> str:
    text = _number_text(value) if isinstance(value, float | int) else value
    number = _as_number(value)
    kind = f"JSONType({document}, {key})"
    bound_text = params.bind(text, "String")
    options = [
        f"({kind} = 'String' AND JSONExtractString({document}, {key}) = {bound_text})",
        # Array elements are read as text: a number element reads as its JSON text.
        f"({kind} = 'Array'"
        f" AND has(JSONExtract({document}, {key}, 'Array(Nullable(String))'), {bound_text}))",
    ]
    if number is not None:
        bound_number = params.bind(number, "Float64")
        options += [
            f"({kind} IN ('Int64', 'UInt64', 'Double')"
            f" AND JSONExtractFloat({document}, {key}) = {bound_number})",
            f"({kind} = 'Array' AND has(JSONExtract({document}, {key}, 'Array(Nullable(Float64))'),"
            f" {bound_number}))",
        ]
    return "(" + " OR ".join(options) + ")"


def _as_number(value: str | float) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _number_text(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def parse_date(text: str) -> datetime | None:
    """A client's date: ISO 8601 (a date alone is midnight; no zone means UTC) or RFC 2822; else None."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_utc(moment: datetime) -> datetime:
    """A datetime read from a UTC column (naive from some clients) as an aware UTC datetime."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
