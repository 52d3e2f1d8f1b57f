"""The analysis facts of sent messages (`sent_message_facts`): each message's processing time and
dimensions with the states it reached, kept so that analysis counts with one scan and no join.

A sent message has one row with `sent` = 1 and empty masks. Each time the states it reached grow, a
row with `sent` = 0 records the change from one state mask to the larger one. The number of messages
whose states satisfy a predicate P is then ``sum(P(to_mask) - (sent = 0 AND P(from_mask)))``: the
changes of a message telescope to P of its current mask.

Status events land in `delivery_status_pending` as they are stored. `fold_pending_statuses` (run by
the compute loop) turns them into change rows and cancels them; those of a message still unknown a
day after they were stored, it drops. Until then, `facts_sql` counts each message with pending
states once more with them ORed into its masks, and once less without, so the facts read exactly
what the status events say at any time; only those messages are joined.
Folding twice, or after a crash between its two inserts, changes nothing: a change is computed from
the message's current mask and dropped when empty. One folder at a time per workspace (the compute
lease) is required: two concurrent folds would record the same change twice.

ClickHouse also keeps the rows counted per hour (a projection): analysis by whole hours with no
narrower filter than channels and providers reads those counts instead of every row, over a range
of whole hours or one longer than a week.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NamedTuple

from engine.sent_messages import Parameters, SentFilter, as_utc, filter_clauses
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
# What analysis reads of a message besides its key, and the columns naming its user (for deleting
# users).
DESCRIPTION_COLUMNS = (
    "processing_time",
    "journey_id",
    "node_id",
    "broadcast_id",
    "template_id",
    "channel_type",
    "provider",
)
OWNER_COLUMNS = ("user_id", "anonymous_id")
# The dimensions the hourly counts keep (the projection `hourly` of migration 7).
HOURLY_COLUMNS = ("channel_type", "provider")
# What tells the state changes of fact rows apart.
_STATE_KEYS = "sent, from_mask, to_mask"
# The range past which whole hours are read from their hourly counts when its edges are not whole.
HOURLY_ABOVE = timedelta(days=7)
_TIME = "DateTime64(3, 'UTC')"
_MILLISECOND = timedelta(milliseconds=1)  # the resolution of processing_time
_FACT_TYPES = {"processing_time": _TIME, "hidden": "Bool"}
# The pending states of each message: status events stored and not folded yet.
_PENDING_SQL = (
    "SELECT message_key, groupBitOr(mask) AS add_mask FROM (SELECT message_key, mask"
    " FROM delivery_status_pending WHERE workspace_id = {workspace}{narrow}"
    " GROUP BY message_key, mask HAVING sum(pending) > 0) GROUP BY message_key"
)
FOLD_BATCH = 50_000
# How long status events of a message that was never stored stay pending (a provider's webhook shared
# with another sender, say): until they are dropped, every analysis query joins them.
ORPHANS_AFTER = timedelta(days=1)
# Cancelled pairs past which a fold merges the pending table at once.
COMPACT_ABOVE = 10_000
# The predicate every message satisfies.
EVERY = "1"


def facts_cover(where: SentFilter) -> bool:
    """Whether the facts can answer `where` (they hold no recipient, sender, group or property)."""
    return not (
        where.to or where.senders or where.group_ids or where.triggering_properties or where.context_values
    )


def facts_sql(
    workspace_id: str,
    where: SentFilter,
    params: Parameters,
    columns: Sequence[str],
    *,
    with_states: bool = True,
    by_hours: bool = False,
) -> str:
    """Weighted fact rows of the workspace's sent messages matching `where` (see `facts_cover`):
    `columns` (of DESCRIPTION_COLUMNS), sent, from_mask, to_mask and `weight`, the number of rows each
    stands for. Counts over them are exact with the messages' pending states ORed into their masks.
    Without `with_states` those are left out: right when only sent messages are counted (`EVERY`) or
    nothing is pending (`has_pending_states`).

    With `by_hours` (the caller buckets processing_time by whole hours, or reads none), the rows of
    whole hours may be read from their hourly counts, processing_time then the start of the hour.
    """
    workspace = params.bind(workspace_id, "String")
    ours = [f"workspace_id = {workspace}", "NOT hidden"]
    matching = " AND ".join([*ours, *filter_clauses(where, params, _FILTER_COLUMNS)])
    selected = ", ".join([*columns, "sent", "from_mask", "to_mask"])
    parts = [f"SELECT {selected}, toInt64(1) AS weight FROM sent_message_facts WHERE {matching}"]  # noqa: S608
    whole = _whole_hours(where) if by_hours and _hourly_cover(where, columns) else None
    if whole is not None and _hours_pay(where, edges=whole.edges):
        first, last = (
            None if hour is None else params.bind(hour, _TIME) for hour in (whole.first, whole.end)
        )
        # ClickHouse reads the hourly projection for a query over the table grouping by its keys.
        keys = ", ".join([*(column for column in columns if column != "processing_time"), _STATE_KEYS])
        narrowed = filter_clauses(replace(where, start=None, end=None), params, _FILTER_COLUMNS)
        hours = " AND ".join([*ours, *narrowed, *_within("toStartOfHour(processing_time)", first, last)])
        # A range of whole hours (the screen's presets) is read from the counts alone.
        edge_rows = f"{parts[0]} AND NOT ({' AND '.join(_within('processing_time', first, last))})"
        parts = [
            *([edge_rows] if whole.edges else []),
            f"SELECT {selected.replace('processing_time', 'hour AS processing_time')},"  # noqa: S608
            f" toInt64(rows) AS weight FROM (SELECT toStartOfHour(processing_time) AS hour, {keys},"
            f" count() AS rows FROM sent_message_facts WHERE {hours} GROUP BY hour, {keys})",
        ]
    if with_states:
        # A message with pending states counts again with them, less once without: its changes then
        # telescope to P of its current mask with them. Only those messages are read twice.
        pending = _PENDING_SQL.format(workspace=workspace, narrow="")
        qualified = "".join(f"f.{column} AS {column}, " for column in columns)
        parts.append(
            f"SELECT {selected.replace('from_mask, to_mask', 'change.1 AS from_mask, change.2 AS to_mask')},"  # noqa: S608
            f" change.3 AS weight FROM (SELECT {qualified}f.sent AS sent, arrayJoin(["
            "(bitOr(f.from_mask, p.add_mask), bitOr(f.to_mask, p.add_mask), toInt64(1)),"
            " (f.from_mask, f.to_mask, toInt64(-1))]) AS change"
            f" FROM sent_message_facts AS f INNER JOIN ({pending}) AS p ON p.message_key = f.message_key"
            f" WHERE {matching} AND f.message_key IN (SELECT message_key FROM ({pending})))"
        )
    return " UNION ALL ".join(parts)


def _hours_pay(where: SentFilter, *, edges: bool) -> bool:
    """Whether reading the hourly counts pays: always when they are all that is read (no partial hours
    at the edges); else only over more than HOURLY_ABOVE, as the edges are a second read of the
    table, which cost more than scanning a week of rows at 33k messages a day (bench/pages)."""
    if not edges or where.start is None or where.end is None:
        return True
    return where.end - where.start > HOURLY_ABOVE


def _hourly_cover(where: SentFilter, columns: Sequence[str]) -> bool:
    """Whether the hourly counts hold `columns` and every filter of `where` but the range."""
    narrower = (field for field, column in _FILTER_COLUMNS if column not in HOURLY_COLUMNS)
    held = set(columns) <= {"processing_time", *HOURLY_COLUMNS}
    return held and facts_cover(where) and not any(getattr(where, field) for field in narrower)


def has_pending_states(store: EventStore, workspace_id: str) -> bool:
    """Whether any status event of the workspace waits to be folded (`facts_sql`'s `with_states`)."""
    pending = store.query(
        "SELECT 1 FROM delivery_status_pending WHERE workspace_id = {workspace:String}"
        " GROUP BY message_key, mask HAVING sum(pending) > 0 LIMIT 1",
        {"workspace": workspace_id},
    )
    return bool(pending)


class _WholeHours(NamedTuple):
    """The first and the end of the whole hours in a range (None: unbounded), and whether the range
    holds anything else (partial hours at its edges)."""

    first: datetime | None
    end: datetime | None
    edges: bool


def _whole_hours(where: SentFilter) -> _WholeHours:
    first = last = None
    edges = False
    if where.start is not None:
        start = as_utc(where.start)
        hour = start.replace(minute=0, second=0, microsecond=0)
        edges = hour != start
        first = hour if hour == start else hour + timedelta(hours=1)
    if where.end is not None:
        # The range holds its end, to the millisecond stored: an hour is whole when the range holds its
        # last millisecond.
        end = as_utc(where.end)
        last = (end + _MILLISECOND).replace(minute=0, second=0, microsecond=0)
        edges = edges or last <= end
    return _WholeHours(first, last, edges)


def _within(moment: str, first: str | None, last: str | None) -> list[str]:
    """Clauses keeping `moment` in [first, last)."""
    clauses = []
    if first is not None:
        clauses.append(f"{moment} >= {first}")
    if last is not None:
        clauses.append(f"{moment} < {last}")
    return clauses or ["1"]


def count_sql(predicate: str) -> str:
    """The number of messages among weighted fact rows whose states satisfy `predicate` (see
    `reached_sql`)."""
    if predicate == EVERY:
        return "sum(weight * sent)"
    after = predicate.format(mask="to_mask")
    before = predicate.format(mask="from_mask")
    return f"sum(weight * (toInt64({after}) - toInt64(sent = 0 AND {before})))"


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


def fold_pending_statuses(
    store: EventStore, workspace_id: str, *, orphans_after: timedelta = ORPHANS_AFTER
) -> int:
    """Record the changes the workspace's pending status events make to their messages' masks, and
    cancel those events; return how many changes were recorded. Status events whose sent message is
    not stored yet stay pending, until they have been stored `orphans_after`: then they are dropped."""
    recorded = cancelled = 0
    after: int | None = -1
    while after is not None:
        changes, cancels, after = _fold_batch(store, workspace_id, after, orphans_after)
        recorded += changes
        cancelled += cancels
    if cancelled >= COMPACT_ABOVE:
        # Every query reads the pending table whole: merge the cancelled rows away now rather than
        # whenever background merges get to them.
        store.command("OPTIMIZE TABLE delivery_status_pending FINAL")
    return recorded


def _fold_batch(
    store: EventStore, workspace_id: str, after: int, orphans_after: timedelta
) -> tuple[int, int, int | None]:
    """Fold up to FOLD_BATCH pending (message, state) pairs with keys above `after`; return how many
    changes were recorded, how many pairs cancelled, and the last key when there may be more."""
    bounds = {"workspace": workspace_id, "after": after}
    # Per pair: whether it waited long enough to be dropped if its message is unknown, and the user
    # its status events name (the owner of a cancel that drops them).
    snapshot = store.query(
        "SELECT message_key, mask, sum(pending) AS count,"  # noqa: S608
        " max(stored_at) <= now() - INTERVAL {orphans:UInt32} SECOND, any(user_id), any(anonymous_id)"
        " FROM delivery_status_pending"
        " WHERE workspace_id = {workspace:String} AND message_key > {after:Int128}"
        " GROUP BY message_key, mask HAVING count > 0"
        f" ORDER BY message_key, mask LIMIT {FOLD_BATCH}",
        {**bounds, "orphans": int(orphans_after.total_seconds())},
    )
    if not snapshot:
        return 0, 0, None
    full = len(snapshot) == FOLD_BATCH
    if full:
        # The limit may have cut the last message's states: it goes whole into the next batch.
        snapshot = [row for row in snapshot if row[0] != snapshot[-1][0]]
    last = int(snapshot[-1][0])
    # Current masks of every message pending in the snapshot's key range (a superset of it).
    narrow = " AND message_key > {after:Int128} AND message_key <= {last:UInt64}"
    pending = _PENDING_SQL.format(workspace="{workspace:String}", narrow=narrow)
    # message key -> (message key, the carried columns, mask)
    current = {int(row[0]): row for row in store.query(_current_masks_sql(pending), {**bounds, "last": last})}
    added: dict[int, int] = {}
    for key, mask, *_ in snapshot:
        added[int(key)] = added.get(int(key), 0) | int(mask)
    changes = []
    for key, mask in added.items():
        row = current.get(key)
        if row is not None and int(row[-1]) | mask != int(row[-1]):
            changes.append([workspace_id, *row[:-1], 0, int(row[-1]), int(row[-1]) | mask])
    store.insert("sent_message_facts", changes, _INSERT_COLUMNS, _INSERT_TYPES)
    # Only what was folded is cancelled: events of a message not stored yet wait for it, unless they
    # waited too long. A cancel names the user, so deleting the user deletes it with the events it
    # cancels.
    owner = slice(1 + len(DESCRIPTION_COLUMNS), 1 + len(DESCRIPTION_COLUMNS) + len(OWNER_COLUMNS))
    cancels = [
        [workspace_id, key, mask, *current[int(key)][owner], -int(count)]
        if int(key) in current
        else [workspace_id, key, mask, *orphan_owner, -int(count)]
        for key, mask, count, orphaned, *orphan_owner in snapshot
        if int(key) in current or orphaned
    ]
    store.insert(
        "delivery_status_pending",
        cancels,
        ("workspace_id", "message_key", "mask", *OWNER_COLUMNS, "pending"),
        ("String", "UInt64", "UInt8", "String", "String", "Int64"),
    )
    return len(changes), len(cancels), last if full else None


def _current_masks_sql(pending: str) -> str:
    """The message key, the carried columns and `mask` (the states reached so far) of each message of
    the workspace that is among `pending`."""
    picked = "".join(f", any({column}) AS {column}" for column in _CARRIED)
    return (
        f"SELECT message_key{picked}, groupBitOr(to_mask) AS mask"  # noqa: S608
        f" FROM (SELECT message_key, {', '.join(_CARRIED)}, to_mask FROM sent_message_facts"
        " WHERE workspace_id = {workspace:String}"
        f" AND message_key IN (SELECT message_key FROM ({pending}))) GROUP BY message_key"
    )


# What a change row copies from its message.
_CARRIED = (*DESCRIPTION_COLUMNS, *OWNER_COLUMNS, "hidden")
_INSERT_COLUMNS = ("workspace_id", "message_key", *_CARRIED, "sent", "from_mask", "to_mask")
_INSERT_TYPES = (
    "String",
    "UInt64",
    *(_FACT_TYPES.get(column, "String") for column in _CARRIED),
    "UInt8",
    "UInt8",
    "UInt8",
)
