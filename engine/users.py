"""Users as the computed assignments know them (Dittofeed §6.8): a filtered, cursor-paged list, a count,
and deleting everything stored about some users.

A user is anyone with a row in `computed_property_assignments_v2`; the latest row per (property, user)
by `assigned_at` is the current value. Filters are evaluated in ClickHouse over those latest values,
with every value bound as a parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.compute.process import forget_user_assignments
from engine.errors import InvalidInput
from engine.storage.event_store import EventStore
from engine.storage.resource_models import (
    ResourceType,
    Segment,
    SubscriptionGroup,
    SubscriptionGroupType,
    UserProperty,
)

# Every ClickHouse table holding per-user rows, with the column(s) naming the user.
USER_DATA_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("user_events_v2", ("user_id", "anonymous_id")),
    ("internal_events", ("user_id", "anonymous_id")),
    ("computed_property_assignments_v2", ("user_id",)),
    ("computed_property_state_v4", ("user_id",)),
    ("group_user_assignments", ("user_id",)),
    ("user_group_assignments", ("user_id",)),
    ("sent_message_facts", ("user_id", "anonymous_id")),
    ("delivery_status_pending", ("user_id", "anonymous_id")),
)


def _latest_assignments(narrow: str) -> str:
    """The current value of every (user, property) pair of the workspace, `narrow` ANDed in."""
    return (
        "SELECT user_id, type, computed_property_id,"  # noqa: S608
        " argMax(segment_value, assigned_at) AS segment_value,"
        " argMax(user_property_value, assigned_at) AS user_property_value"
        " FROM computed_property_assignments_v2 WHERE workspace_id = {workspace:String}"
        + narrow
        + " GROUP BY user_id, type, computed_property_id"
    )


@dataclass(frozen=True)
class UserFilter:
    """Which users to list or count."""

    user_ids: Sequence[str] | None = None
    in_segments: Sequence[str] = ()
    not_in_segments: Sequence[str] = ()
    property_values: Sequence[tuple[str, Sequence[str]]] = ()
    subscribed: Sequence[Subscription] = ()
    not_subscribed: Sequence[Subscription] = ()


@dataclass(frozen=True)
class UserPage:
    users: list[dict[str, Any]]
    next_cursor: str | None = None
    previous_cursor: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"users": self.users, "userCount": 0}
        if self.next_cursor is not None:
            body["nextCursor"] = self.next_cursor
        if self.previous_cursor is not None:
            body["previousCursor"] = self.previous_cursor
        return body


@dataclass(frozen=True)
class PageRequest:
    limit: int = 10
    cursor: str | None = None
    direction: Literal["after", "before"] = "after"
    exclusive: bool = False
    descending: bool = False
    include_subscriptions: bool = False


@dataclass
class _Names:
    properties: dict[str, str] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)


@dataclass(frozen=True)
class Subscription:
    """A subscription group as the user filters see it: its two Internal segments and the state of a
    user who never chose (subscribed for opt-out groups, not for opt-in ones)."""

    group_id: str
    name: str
    member_segment: str | None
    unsubscribed_segment: str | None
    default: bool


def load_subscriptions(session: Session, workspace_id: str) -> dict[str, Subscription]:
    """The workspace's subscription groups by id, in name order."""
    segments: dict[tuple[str | None, str], str] = {
        (segment.subscription_group_id, segment.definition.get("entryNode", {}).get("type", "")): segment.id
        for segment in session.scalars(
            select(Segment).where(
                Segment.workspace_id == workspace_id, Segment.subscription_group_id.is_not(None)
            )
        )
    }
    groups = session.scalars(
        select(SubscriptionGroup)
        .where(SubscriptionGroup.workspace_id == workspace_id)
        .order_by(SubscriptionGroup.name)
    )
    return {
        group.id: Subscription(
            group.id,
            group.name,
            segments.get((group.id, "SubscriptionGroup")),
            segments.get((group.id, "SubscriptionGroupUnsubscribed")),
            default=group.type == SubscriptionGroupType.OPT_OUT,
        )
        for group in groups
    }


def pick_subscriptions(
    subscriptions: dict[str, Subscription], group_ids: Sequence[str], field: str
) -> list[Subscription]:
    """:raises InvalidInput: a group id that is not one of the workspace's subscription groups."""
    for group_id in group_ids:
        if group_id not in subscriptions:
            raise InvalidInput(f"body/{field} names unknown subscription group {group_id}", field=field)
    return [subscriptions[group_id] for group_id in group_ids]


def list_users(
    store: EventStore, session: Session, workspace_id: str, where: UserFilter, page: PageRequest
) -> UserPage:
    """One page of users ordered by id, each with its user properties, segments and subscriptions."""
    cursor = decode_cursor(page.cursor) if page.cursor is not None else None
    backwards = page.direction == "before"
    # Walking "before" the cursor reads the ids on the other side in reverse, then flips them back.
    read_descending = page.descending != backwards
    bound = ""
    parameters: dict[str, Any] = {"limit": page.limit}
    if cursor is not None:
        strict = not backwards or page.exclusive
        operator = ("<" if read_descending else ">") + ("" if strict else "=")
        bound = f" AND user_id {operator} {{cursor:String}}"
        parameters["cursor"] = cursor
    having, filter_parameters = _filter_sql(workspace_id, where)
    order = "DESC" if read_descending else "ASC"
    ids = [
        str(row[0])
        for row in store.query(
            f"SELECT user_id FROM ({_latest_assignments(_narrow(where) + bound)})"  # noqa: S608
            f" GROUP BY user_id HAVING {having} ORDER BY user_id {order} LIMIT {{limit:UInt32}}",
            {**parameters, **filter_parameters},
        )
    ]
    if backwards:
        ids.reverse()
    users = _describe(store, session, workspace_id, ids, page.include_subscriptions)
    return UserPage(
        users,
        next_cursor=encode_cursor(ids[-1]) if ids and len(ids) == page.limit else None,
        previous_cursor=encode_cursor(ids[0]) if ids and cursor is not None else None,
    )


def count_users(store: EventStore, workspace_id: str, where: UserFilter) -> int:
    having, parameters = _filter_sql(workspace_id, where)
    [(count,)] = store.query(
        f"SELECT count() FROM (SELECT user_id FROM ({_latest_assignments(_narrow(where))})"  # noqa: S608
        f" GROUP BY user_id HAVING {having})",
        parameters,
    )
    return int(count)


def delete_users(session: Session, store: EventStore, workspace_id: str, user_ids: Sequence[str]) -> None:
    """Delete the users' events, assignments (and their SQL copies) and group memberships. Idempotent."""
    if not user_ids:
        return
    forget_user_assignments(session, workspace_id, user_ids)
    parameters = {"workspace": workspace_id, "users": list(user_ids)}
    for table, columns in USER_DATA_TABLES:
        matches = " OR ".join(f"{column} IN {{users:Array(String)}}" for column in columns)
        store.command(
            f"DELETE FROM {table} WHERE workspace_id = {{workspace:String}} AND ({matches})",  # noqa: S608
            parameters,
        )


def encode_cursor(user_id: str) -> str:
    return base64.b64encode(json.dumps({"u": user_id}, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str) -> str:
    """The user id a cursor points at. :raises InvalidInput: not a cursor this API issued."""
    try:
        value = json.loads(base64.b64decode(cursor, validate=True))
    except (binascii.Error, ValueError):
        raise InvalidInput("body/cursor is not a valid cursor", field="cursor") from None
    if not isinstance(value, dict) or not isinstance(value.get("u"), str):
        raise InvalidInput("body/cursor is not a valid cursor", field="cursor")
    user_id: str = value["u"]
    return user_id


def _narrow(where: UserFilter) -> str:
    return " AND user_id IN {user_ids:Array(String)}" if where.user_ids is not None else ""


def _filter_sql(workspace_id: str, where: UserFilter) -> tuple[str, dict[str, Any]]:
    conditions = ["1"]
    parameters: dict[str, Any] = {"workspace": workspace_id}
    if where.user_ids is not None:
        parameters["user_ids"] = list(where.user_ids)
    if where.in_segments:
        segments = sorted(set(where.in_segments))
        conditions.append(
            "countIf(type = 'segment' AND computed_property_id IN {in_segments:Array(String)}"
            " AND segment_value) = {in_count:UInt32}"
        )
        parameters.update(in_segments=segments, in_count=len(segments))
    if where.not_in_segments:
        conditions.append(
            "countIf(type = 'segment' AND computed_property_id IN {out_segments:Array(String)}"
            " AND segment_value) = 0"
        )
        parameters["out_segments"] = sorted(set(where.not_in_segments))
    for index, (property_id, values) in enumerate(where.property_values):
        # A value matches as the stored JSON text or, for strings, as the bare string.
        conditions.append(
            f"countIf(type = 'user_property' AND computed_property_id = {{p{index}:String}}"
            f" AND (user_property_value IN {{v{index}:Array(String)}}"
            f" OR JSONExtractString(user_property_value) IN {{v{index}:Array(String)}})) > 0"
        )
        parameters[f"p{index}"] = property_id
        parameters[f"v{index}"] = list(values)
    for index, subscription in enumerate([*where.subscribed, *where.not_subscribed]):
        wanted = index < len(where.subscribed)
        # Counts the user's explicit choice against the default; no choice means the default holds.
        against_default = (
            f"countIf(type = 'segment' AND computed_property_id = {{s{index}:String}}"
            f" AND segment_value = {'false' if subscription.default else 'true'}) > 0"
        )
        parameters[f"s{index}"] = subscription.member_segment or ""
        conditions.append(against_default if wanted != subscription.default else f"NOT {against_default}")
    return " AND ".join(conditions), parameters


def _describe(
    store: EventStore, session: Session, workspace_id: str, user_ids: list[str], include_subscriptions: bool
) -> list[dict[str, Any]]:
    if not user_ids:
        return []
    names = _load_names(session, workspace_id, include_subscriptions)
    properties: dict[str, dict[str, Any]] = {user: {} for user in user_ids}
    segments: dict[str, dict[str, bool]] = {user: {} for user in user_ids}
    for user, kind, property_id, segment_value, property_value in store.query(
        _latest_assignments(" AND user_id IN {users:Array(String)}"),
        {"workspace": workspace_id, "users": user_ids},
    ):
        if kind == "segment":
            segments[user][property_id] = bool(segment_value)
        elif property_id in names.properties and property_value:
            properties[user][property_id] = {
                "name": names.properties[property_id],
                "value": _parse_json(property_value),
            }
    described = []
    for user in user_ids:
        item: dict[str, Any] = {
            "id": user,
            "properties": properties[user],
            "segments": [
                {"id": segment_id, "name": names.segments[segment_id]}
                for segment_id, member in segments[user].items()
                if member and segment_id in names.segments
            ],
        }
        if include_subscriptions:
            item["subscriptions"] = [
                {
                    "id": subscription.group_id,
                    "name": subscription.name,
                    "subscribed": segments[user].get(subscription.member_segment or "", subscription.default),
                }
                for subscription in names.subscriptions
            ]
        described.append(item)
    return described


def _load_names(session: Session, workspace_id: str, include_subscriptions: bool) -> _Names:
    names = _Names()
    for property_id, name in session.execute(
        select(UserProperty.id, UserProperty.name).where(UserProperty.workspace_id == workspace_id)
    ):
        names.properties[property_id] = name
    for segment_id, name in session.execute(
        select(Segment.id, Segment.name).where(
            Segment.workspace_id == workspace_id, Segment.resource_type != ResourceType.INTERNAL
        )
    ):
        names.segments[segment_id] = name
    if include_subscriptions:
        names.subscriptions = list(load_subscriptions(session, workspace_id).values())
    return names


def _parse_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
