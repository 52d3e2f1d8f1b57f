"""Group membership reads (Dittofeed §6.10), from the assignment tables the group calls feed.

The latest assignment per (group, user) decides membership, so a later `assigned: false` removes a
user even before ClickHouse merges the replaced rows.
"""

from __future__ import annotations

from engine.storage.event_store import EventStore


def list_group_users(
    store: EventStore, workspace_id: str, group_id: str, *, limit: int, offset: int
) -> list[str]:
    """Users currently in the group, most recently assigned first."""
    return _members(
        store, "group_user_assignments", "group_id", "user_id", workspace_id, group_id, limit, offset
    )


def list_user_groups(
    store: EventStore, workspace_id: str, user_id: str, *, limit: int, offset: int
) -> list[str]:
    """Groups the user currently belongs to, most recently assigned first."""
    return _members(
        store, "user_group_assignments", "user_id", "group_id", workspace_id, user_id, limit, offset
    )


def _members(
    store: EventStore,
    table: str,
    key: str,
    member: str,
    workspace_id: str,
    value: str,
    limit: int,
    offset: int,
) -> list[str]:
    rows = store.query(
        f"SELECT {member} FROM {table}"  # noqa: S608
        f" WHERE workspace_id = {{workspace:String}} AND {key} = {{value:String}}"
        f" GROUP BY {member} HAVING argMax(assigned, assigned_at)"
        f" ORDER BY max(assigned_at) DESC, {member} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}",
        {"workspace": workspace_id, "value": value, "limit": limit, "offset": offset},
    )
    return [str(row[0]) for row in rows]
