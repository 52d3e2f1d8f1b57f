"""Delivery analysis (Dittofeed §6.12): chart data over time, summary numbers and per-node journey
stats, all counted over sent messages and the states their status events reached.

The cohort is the workspace's sent messages (not hidden) processed in the range, narrowed by the
filters. Each message carries flags delivered / opened / clicked / bounced from its status events at
any time (`delivery_status`). Unlike upstream, the `messageStates` filter is honoured: only messages
that reached one of the given states are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from engine.resources import iso_ms
from engine.sent_messages import (
    MESSAGE_KEY,
    STATES_SQL,
    Parameters,
    SentFilter,
    as_utc,
    sent_messages_sql,
    with_state_flags_sql,
)
from engine.storage.event_store import EventStore

GroupBy = Literal["journey", "broadcast", "messageTemplate", "channel", "provider", "messageState"]
MessageState = Literal["sent", "delivered", "opened", "clicked", "bounced"]

# Granularity -> (interval length, unit), pasted into SQL from this table only.
GRANULARITIES: dict[str, tuple[int, str]] = {
    "30second": (30, "SECOND"),
    "1minute": (1, "MINUTE"),
    "5minutes": (5, "MINUTE"),
    "10minutes": (10, "MINUTE"),
    "30minutes": (30, "MINUTE"),
    "1hour": (1, "HOUR"),
    "6hours": (6, "HOUR"),
    "12hours": (12, "HOUR"),
    "1day": (1, "DAY"),
    "7days": (7, "DAY"),
    "30days": (30, "DAY"),
}
# `auto`: the first granularity whose range bound is at least the requested range.
_AUTO: tuple[tuple[timedelta, str], ...] = (
    (timedelta(hours=2), "1minute"),
    (timedelta(hours=8), "5minutes"),
    (timedelta(hours=24), "30minutes"),
    (timedelta(days=7), "1hour"),
    (timedelta(days=30), "6hours"),
    (timedelta(days=90), "1day"),
    (timedelta(days=365), "7days"),
)
# The group key of a sent message, read in the cohort (messageState is read after the status join).
_GROUP_KEYS: dict[str, str] = {
    "journey": "journey_id",
    "broadcast": "broadcast_id",
    "messageTemplate": "template_id",
    "channel": "channel_type",
    "provider": "JSONExtractString(properties, 'variant', 'provider', 'type')",
    "messageState": "''",
}


@dataclass(frozen=True)
class AnalysisFilter:
    """The sent-message filters (with the range in `sent.start` / `sent.end`) and the states to keep."""

    sent: SentFilter = field(default_factory=SentFilter)
    message_states: Sequence[MessageState] = ()


def resolve_granularity(granularity: str, start: datetime, end: datetime) -> str:
    """`auto` picked by the range's width (upstream's thresholds); any other value as given."""
    if granularity != "auto":
        return granularity
    width = end - start
    return next((name for bound, name in _AUTO if width <= bound), "30days")


def chart_data(
    store: EventStore,
    workspace_id: str,
    where: AnalysisFilter,
    *,
    granularity: str = "auto",
    group_by: GroupBy | None = None,
) -> dict[str, Any]:
    """Sent messages per time bucket (of the sent message's processing time), per group if asked."""
    if where.sent.start is None or where.sent.end is None:
        raise ValueError("chart data needs a start and an end")
    resolved = resolve_granularity(granularity, where.sent.start, where.sent.end)
    length, unit = GRANULARITIES[resolved]
    group_key = _GROUP_KEYS[group_by] if group_by else "''"
    columns = f"message_id, processing_time, {group_key} AS group_key"
    by_state = group_by == "messageState"
    params = Parameters()
    cohort = _cohort_sql(workspace_id, where, params, columns, with_flags=by_state)
    key = "arrayJoin(states)" if by_state else "group_key"
    rows = store.query(
        f"SELECT toStartOfInterval(processing_time, INTERVAL {length} {unit}) AS bucket,"  # noqa: S608
        f" {key} AS state_or_group, count() AS count FROM ({cohort})"
        " GROUP BY bucket, state_or_group ORDER BY bucket, state_or_group",
        params.values,
    )
    data = []
    for bucket, group_key, count in rows:
        point: dict[str, Any] = {"timestamp": iso_ms(as_utc(bucket)), "count": int(count)}
        if group_key:
            point["groupKey"] = point["groupLabel"] = group_key
        data.append(point)
    return {"data": data, "granularity": resolved}


def summary(
    store: EventStore, workspace_id: str, where: AnalysisFilter, *, channel: str | None = None
) -> dict[str, Any]:
    """Totals over the cohort; which of them are computed depends on `channel` (upstream's rules)."""
    if channel:
        where = replace(where, sent=replace(where.sent, channels=[channel]))
    params = Parameters()
    cohort = _cohort_sql(workspace_id, where, params, "message_id")
    [(total, reached, delivered, opened, clicked, bounced)] = store.query(
        "SELECT count(), countIf(delivered OR opened OR clicked), countIf(delivered),"  # noqa: S608
        f" countIf(opened OR clicked), countIf(clicked), countIf(bounced) FROM ({cohort})",
        params.values,
    )
    numbers = {"deliveries": 0, "sent": int(total), "opens": 0, "clicks": 0, "bounces": 0}
    if channel == "Email":
        numbers.update(deliveries=int(reached), opens=int(opened), clicks=int(clicked), bounces=int(bounced))
    elif channel == "Sms":
        numbers.update(deliveries=int(delivered), bounces=int(bounced))
    return {"summary": numbers}


def journey_stats(
    store: EventStore,
    workspace_id: str,
    journey_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Per message node of the journey: sent, and the cascading delivered ⊇ opened ⊇ clicked, bounced."""
    counts = journeys_node_counts(store, workspace_id, [journey_id], start=start, end=end)
    return {"nodeStats": counts.get(journey_id, {})}


def journeys_node_counts(
    store: EventStore,
    workspace_id: str,
    journey_ids: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, dict[str, dict[str, int]]]:
    """`journey_stats`'s numbers of several journeys in one query: journey id -> node id -> counts
    (a journey or node that sent nothing is absent)."""
    if not journey_ids:
        return {}
    params = Parameters()
    where = AnalysisFilter(SentFilter(journey_ids=journey_ids, start=start, end=end))
    cohort = _cohort_sql(
        workspace_id,
        where,
        params,
        "message_id, journey_id, JSONExtractString(properties, 'nodeId') AS node",
    )
    rows = store.query(
        "SELECT journey_id, node, count(), countIf(delivered OR opened OR clicked),"  # noqa: S608
        f" countIf(opened OR clicked), countIf(clicked), countIf(bounced) FROM ({cohort})"
        " WHERE node != '' GROUP BY journey_id, node ORDER BY journey_id, node",
        params.values,
    )
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for journey_id, node, sent, delivered, opened, clicked, bounced in rows:
        counts.setdefault(str(journey_id), {})[str(node)] = {
            "sent": int(sent),
            "delivered": int(delivered),
            "opened": int(opened),
            "clicked": int(clicked),
            "bounced": int(bounced),
        }
    return counts


def _cohort_sql(
    workspace_id: str, where: AnalysisFilter, params: Parameters, columns: str, *, with_flags: bool = True
) -> str:
    """`columns` of the matching sent messages, with their state flags and `states` (the states they
    reached). Without `with_flags` (and no state filter), only the sent messages: no status to join.
    """
    if not with_flags and not where.message_states:
        return sent_messages_sql(workspace_id, where.sent, params, columns)
    sent = sent_messages_sql(workspace_id, where.sent, params, f"{columns}, {MESSAGE_KEY}")
    keep = ""
    if where.message_states:
        keep = f" WHERE hasAny(states, {params.bind(list(where.message_states), 'Array(String)')})"
    return (
        "SELECT s.*, st.delivered AS delivered, st.opened AS opened, st.clicked AS clicked,"  # noqa: S608
        f" st.bounced AS bounced, {STATES_SQL} AS states"
        f" FROM {with_state_flags_sql(sent, workspace_id, params, narrow=where.sent.is_narrow)}{keep}"
    )
