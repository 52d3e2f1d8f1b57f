"""Delivery analysis (Dittofeed §6.12): chart data over time, summary numbers and per-node journey
stats, all counted over sent messages and the states their status events reached.

The cohort is the workspace's sent messages (not hidden) processed in the range, narrowed by the
filters. Each message carries flags delivered / opened / clicked / bounced from its status events at
any time. Unlike upstream, the `messageStates` filter is honoured: only messages that reached one of
the given states are counted.

Counts come from the analysis facts (engine.delivery_facts): one sum over their rows (and, for long
ranges or ranges of whole hours, their hourly counts), joining only the messages whose status events
are not folded yet. Filters the facts do not hold (recipient, sender, group, triggering or context
properties) read the sent messages joined with their `delivery_status` instead (engine.sent_messages).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from engine.delivery_facts import (
    EVERY,
    both_sql,
    count_sql,
    facts_cover,
    facts_sql,
    has_pending_states,
    reached_sql,
)
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
# The same, read in the facts (engine.delivery_facts): their columns.
_FACT_GROUP_KEYS: dict[str, str] = {
    "journey": "journey_id",
    "broadcast": "broadcast_id",
    "messageTemplate": "template_id",
    "channel": "channel_type",
    "provider": "provider",
}
_STATES: tuple[MessageState, ...] = ("sent", "delivered", "opened", "clicked", "bounced")


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
    if facts_cover(where.sent):
        interval = f"INTERVAL {length} {unit}"
        data = _chart_from_facts(
            store, workspace_id, where, interval, group_by, by_hours=unit in ("HOUR", "DAY")
        )
        return {"data": data, "granularity": resolved}
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
    data = [_point(iso_ms(as_utc(moment)), key, count) for moment, key, count in rows]
    return {"data": data, "granularity": resolved}


def summary(
    store: EventStore, workspace_id: str, where: AnalysisFilter, *, channel: str | None = None
) -> dict[str, Any]:
    """Totals over the cohort; which of them are computed depends on `channel` (upstream's rules)."""
    if channel:
        where = replace(where, sent=replace(where.sent, channels=[channel]))
    if facts_cover(where.sent):
        totals = _summary_from_facts(store, workspace_id, where, sent_only=channel not in ("Email", "Sms"))
    else:
        totals = _summary_from_cohort(store, workspace_id, where)
    total, reached, delivered, opened, clicked, bounced = (int(number) for number in totals)
    numbers = {"deliveries": 0, "sent": total, "opens": 0, "clicks": 0, "bounces": 0}
    if channel == "Email":
        numbers.update(deliveries=reached, opens=opened, clicks=clicked, bounces=bounced)
    elif channel == "Sms":
        numbers.update(deliveries=delivered, bounces=bounced)
    return {"summary": numbers}


def summary_of_chart(chart: dict[str, Any], group_by: GroupBy | None) -> dict[str, Any]:
    """What `summary` answers without a channel (the messages sent), from chart data of the same
    filter: every message is counted in exactly one point, or in one 'sent' point by message state."""
    points = chart["data"]
    if group_by == "messageState":
        points = [point for point in points if point["groupKey"] == "sent"]
    sent = sum(point["count"] for point in points)
    return {"summary": {"deliveries": 0, "sent": sent, "opens": 0, "clicks": 0, "bounces": 0}}


def _summary_from_cohort(store: EventStore, workspace_id: str, where: AnalysisFilter) -> tuple[Any, ...]:
    params = Parameters()
    cohort = _cohort_sql(workspace_id, where, params, "message_id")
    [totals] = store.query(
        "SELECT count(), countIf(delivered OR opened OR clicked), countIf(delivered),"  # noqa: S608
        f" countIf(opened OR clicked), countIf(clicked), countIf(bounced) FROM ({cohort})",
        params.values,
    )
    return totals


def _summary_from_facts(
    store: EventStore, workspace_id: str, where: AnalysisFilter, *, sent_only: bool
) -> tuple[Any, ...]:
    """`_cascade_sql`'s counts; with `sent_only` (all the summary shows of other channels), the first
    alone and zeros."""
    params = Parameters()
    keep = reached_sql(where.message_states)
    with_states = (not sent_only or keep != EVERY) and has_pending_states(store, workspace_id)
    rows = facts_sql(workspace_id, where.sent, params, (), with_states=with_states, by_hours=True)
    [totals] = store.query(
        f"SELECT {count_sql(keep) if sent_only else _cascade_sql(keep)} FROM ({rows})",  # noqa: S608
        params.values,
    )
    return totals + (0,) * (6 - len(totals))


def _cascade_sql(keep: str) -> str:
    """The counts summary and journey stats give, of the messages satisfying `keep`: sent, reached
    (delivered, opened or clicked), delivered, opened (or clicked), clicked, bounced."""
    return ", ".join(
        count_sql(both_sql(keep, reached_sql(states)))
        for states in ((), ("delivered", "opened", "clicked"), ("delivered",), ("opened", "clicked"),
                       ("clicked",), ("bounced",))
    )  # fmt: skip


def _chart_from_facts(
    store: EventStore,
    workspace_id: str,
    where: AnalysisFilter,
    interval: str,
    group_by: GroupBy | None,
    *,
    by_hours: bool,
) -> list[dict[str, Any]]:
    params = Parameters()
    keep = reached_sql(where.message_states)
    by_state = group_by == "messageState"
    with_states = (by_state or keep != EVERY) and has_pending_states(store, workspace_id)
    group_key = _FACT_GROUP_KEYS.get(group_by or "")  # none by message state
    columns = ("processing_time", group_key) if group_key else ("processing_time",)
    rows = facts_sql(workspace_id, where.sent, params, columns, with_states=with_states, by_hours=by_hours)
    bucket = f"toStartOfInterval(processing_time, {interval}) AS bucket"
    if by_state:
        # The state of each count, in the order of their names (as the cohort's query sorts them).
        states = sorted(_STATES)
        counts = ", ".join(count_sql(both_sql(keep, reached_sql([state]))) for state in states)
        per_bucket = store.query(
            f"SELECT {bucket}, {counts} FROM ({rows}) GROUP BY bucket ORDER BY bucket",  # noqa: S608
            params.values,
        )
        points: list[tuple[str, str, int]] = [
            (stamp, state, count)
            for moment, *numbers in per_bucket
            for stamp in (iso_ms(as_utc(moment)),)
            for state, count in zip(states, numbers, strict=True)
        ]
    else:
        key = group_key or "''"
        per_group = store.query(
            f"SELECT {bucket}, {key} AS group_key, {count_sql(keep)} AS count FROM ({rows})"  # noqa: S608
            " GROUP BY bucket, group_key HAVING count > 0 ORDER BY bucket, group_key",
            params.values,
        )
        points = [(iso_ms(as_utc(moment)), group, count) for moment, group, count in per_group]
    return [_point(stamp, key, count) for stamp, key, count in points if count > 0]


def _point(stamp: str, group_key: str, count: int) -> dict[str, Any]:
    point: dict[str, Any] = {"timestamp": stamp, "count": int(count)}
    if group_key:
        point["groupKey"] = point["groupLabel"] = group_key
    return point


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
    where = SentFilter(journey_ids=journey_ids, start=start, end=end)
    with_states = has_pending_states(store, workspace_id)
    facts = facts_sql(workspace_id, where, params, ("journey_id", "node_id"), with_states=with_states)
    rows = store.query(
        f"SELECT journey_id, node_id, {_cascade_sql(EVERY)} FROM ({facts})"  # noqa: S608
        " WHERE node_id != '' GROUP BY journey_id, node_id ORDER BY journey_id, node_id",
        params.values,
    )
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for journey_id, node, sent, delivered, _, opened, clicked, bounced in rows:
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
