"""The analysis facts of sent messages (`sent_message_facts`): each message's processing time and
dimensions with the states it reached, kept so that analysis counts with one scan and no join.

A sent message has one row with `sent` = 1 and empty masks. Each time the states it reached grow, a
row with `sent` = 0 records the change from one state mask to the larger one. The number of messages
whose states satisfy a predicate P is then ``sum(P(to_mask) - (sent = 0 AND P(from_mask)))``: the
changes of a message telescope to P of its current mask.

Status events land in `delivery_status_pending` as they are stored. `fold_pending_statuses` (run by
the compute loop) turns them into change rows and cancels them. Until then, `facts_sql` adds the
change each pending message is due, so the facts read exactly what the status events say at any time.
Folding twice, or after a crash between its two inserts, changes nothing: a change is computed from
the message's current mask and dropped when empty. One folder at a time per workspace (the compute
lease) is required: two concurrent folds would record the same change twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.sent_messages import Parameters, SentFilter
from engine.storage.event_store import EventStore

# The bit of each state in a mask ('sent' is every message's and has none).
STATE_BITS: dict[str, int] = {"delivered": 1, "opened": 2, "clicked": 4, "bounced": 8}
# Sent-message filters the facts hold a column for, as (filter field, column).
_FILTER_COLUMNS = (
    ("journey_ids", "journey_id"),
    ("broadcast_ids", "broadcast_id"),
    ("user_ids", "if(user_id != '', user_id, anonymous_id)"),
    ("channels", "channel_type"),
    ("template_ids", "template_id"),
    ("providers", "provider"),
)
FACT_COLUMNS = (
    "processing_time, message_key, user_id, anonymous_id, journey_id, node_id, broadcast_id, template_id,"
    " channel_type, provider"
)
# The pending states of each message: status events stored and not folded yet.
_PENDING_SQL = (
    "SELECT message_key, groupBitOr(mask) AS add_mask FROM (SELECT message_key, mask"
    " FROM delivery_status_pending WHERE workspace_id = {workspace}{narrow}"
    " GROUP BY message_key, mask HAVING sum(pending) > 0) GROUP BY message_key"
)
FOLD_BATCH = 50_000
_TIME = "DateTime64(3, 'UTC')"
# The predicate every message satisfies.
EVERY = "1"


def facts_cover(where: SentFilter) -> bool:
    """Whether the facts can answer `where` (they hold no recipient, sender, group or property)."""
    return not (
        where.to or where.senders or where.group_ids or where.triggering_properties or where.context_values
    )


def facts_sql(workspace_id: str, where: SentFilter, params: Parameters, *, with_states: bool = True) -> str:
    """The fact rows of the workspace's sent messages matching `where` (see `facts_cover`), with the
    change each message's pending status events are due: columns FACT_COLUMNS, sent, from_mask, to_mask.
    Without `with_states`, pending changes are left out: enough to count sent messages (`EVERY`).
    """
    workspace = params.bind(workspace_id, "String")
    clauses = [f"workspace_id = {workspace}"]
    for field, column in _FILTER_COLUMNS:
        values: Sequence[str] = getattr(where, field)
        if values:
            clauses.append(f"{column} IN {params.bind(list(values), 'Array(String)')}")
    if where.start is not None:
        clauses.append(f"processing_time >= {params.bind(where.start, _TIME)}")
    if where.end is not None:
        clauses.append(f"processing_time <= {params.bind(where.end, _TIME)}")
    matching = " AND ".join(clauses)
    facts = f"SELECT {FACT_COLUMNS}, sent, from_mask, to_mask FROM sent_message_facts WHERE {matching}"  # noqa: S608
    if not with_states:
        return facts
    pending = _PENDING_SQL.format(workspace=workspace, narrow="")
    return (
        f"{facts} UNION ALL SELECT {_qualified('f')}, toUInt8(0) AS sent, f.mask AS from_mask,"  # noqa: S608
        " bitOr(f.mask, p.add_mask) AS to_mask"
        f" FROM ({_current_masks_sql(matching, pending)}) AS f"
        f" INNER JOIN ({pending}) AS p ON p.message_key = f.message_key"
    )


def count_sql(predicate: str) -> str:
    """The number of messages among fact rows whose states satisfy `predicate` (see `reached_sql`)."""
    if predicate == EVERY:
        return "sum(toInt64(sent))"
    after = predicate.format(mask="to_mask")
    before = predicate.format(mask="from_mask")
    return f"sum(toInt64({after}) - toInt64(sent = 0 AND {before}))"


def reached_sql(states: Sequence[str]) -> str:
    """A predicate over the states of a message (a template over `{mask}`): it reached any of `states`
    ('sent': every message does)."""
    if not states or "sent" in states:
        return EVERY
    bits = 0
    for state in states:
        bits |= STATE_BITS[state]
    return f"bitAnd({{mask}}, {bits}) != 0"


def both_sql(first: str, second: str) -> str:
    """The conjunction of two predicates made by `reached_sql`."""
    if first == EVERY:
        return second
    if second == EVERY:
        return first
    return f"({first} AND {second})"


def fold_pending_statuses(store: EventStore, workspace_id: str) -> int:
    """Record the changes the workspace's pending status events make to their messages' masks, and
    cancel those events; return how many changes were recorded. Status events whose sent message is
    not stored yet stay pending."""
    recorded = 0
    after = -1
    while True:
        bounds = {"workspace": workspace_id, "after": after}
        snapshot = store.query(
            "SELECT message_key, mask, sum(pending) AS count FROM delivery_status_pending"  # noqa: S608
            " WHERE workspace_id = {workspace:String} AND message_key > {after:Int128}"
            " GROUP BY message_key, mask HAVING count > 0"
            f" ORDER BY message_key, mask LIMIT {FOLD_BATCH}",
            bounds,
        )
        if not snapshot:
            return recorded
        last = int(snapshot[-1][0])
        # Current masks of every message pending in the snapshot's key range (a superset of it).
        narrow = " AND message_key > {after:Int128} AND message_key <= {last:UInt64}"
        pending = _PENDING_SQL.format(workspace="{workspace:String}", narrow=narrow)
        current = {
            int(row[1]): row
            for row in store.query(
                _current_masks_sql("workspace_id = {workspace:String}", pending), {**bounds, "last": last}
            )
        }
        added: dict[int, int] = {}
        for key, mask, _ in snapshot:
            added[int(key)] = added.get(int(key), 0) | int(mask)
        changes = []
        for key, mask in added.items():
            row = current.get(key)
            if row is not None and int(row[-1]) | mask != int(row[-1]):
                changes.append([workspace_id, *row[:-1], 0, int(row[-1]), int(row[-1]) | mask])
        store.insert("sent_message_facts", changes, _INSERT_COLUMNS, _INSERT_TYPES)
        # Only what was folded is cancelled: events of a message not stored yet wait for it.
        cancelled = [
            [workspace_id, key, mask, -int(count)] for key, mask, count in snapshot if int(key) in current
        ]
        store.insert(
            "delivery_status_pending",
            cancelled,
            ("workspace_id", "message_key", "mask", "pending"),
            ("String", "UInt64", "UInt8", "Int64"),
        )
        recorded += len(changes)
        if len(snapshot) < FOLD_BATCH:
            return recorded
        after = last


def _current_masks_sql(matching: str, pending: str) -> str:
    """FACT_COLUMNS and `mask` (the states reached so far) of each matching message that is pending."""
    return (
        "SELECT any(processing_time) AS processing_time, message_key, any(user_id) AS user_id,"  # noqa: S608
        " any(anonymous_id) AS anonymous_id, any(journey_id) AS journey_id, any(node_id) AS node_id,"
        " any(broadcast_id) AS broadcast_id, any(template_id) AS template_id,"
        " any(channel_type) AS channel_type, any(provider) AS provider, groupBitOr(to_mask) AS mask"
        f" FROM (SELECT * FROM sent_message_facts WHERE {matching}"
        f" AND message_key IN (SELECT message_key FROM ({pending}))) GROUP BY message_key"
    )


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in _FACT_NAMES)


_FACT_NAMES = tuple(column.strip() for column in FACT_COLUMNS.split(","))
_INSERT_COLUMNS = ("workspace_id", *_FACT_NAMES, "sent", "from_mask", "to_mask")
_INSERT_TYPES = (
    "String",
    "DateTime64(3, 'UTC')",
    "UInt64",
    "String",
    "String",
    "String",
    "String",
    "String",
    "String",
    "String",
    "String",
    "UInt8",
    "UInt8",
    "UInt8",
)
