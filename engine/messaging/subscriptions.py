"""Users' subscription choices (Dittofeed §5.3, §6.9, §7.5): whether a message to a user may go out
under a subscription group, the user's state in every group, applying changes, and finding the user a
hash-authenticated link names.

A user's state in a group is the SQL copy of their assignment to the group's main Internal segment
(`subscriptionGroup-<id>`): in it → "Subscribe", out of it → "Unsubscribe", no row → no choice made,
which means subscribed for an opt-out group and not for an opt-in one.

A change is a `DFSubscriptionChange` track event, which the compute loop turns into membership of the
group's two Internal segments. Waiting a compute cycle would let a message reach someone who has just
unsubscribed, so a change also writes those memberships at once: to ClickHouse (the source the compute
loop compares its results with, so it will not undo them) and to the SQL copies gating reads.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.assignments import Assignment, write_assignments
from engine.bootstrap import SUBSCRIPTION_SECRET_NAME
from engine.errors import InvalidInput, NotAuthenticated, NotFound
from engine.events import EventRow, build_rows
from engine.manual_segments import WriteEvents
from engine.messaging.links import as_identifier, subscription_hash
from engine.resources import canonical_uuid, iso_ms
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.event_store import EventStore
from engine.storage.models import Secret, Workspace, WorkspaceStatus
from engine.storage.resource_models import Segment, SubscriptionGroup, SubscriptionGroupType, UserProperty
from engine.users import Subscription, load_subscriptions

Action = Literal["Subscribe", "Unsubscribe"]
SUBSCRIPTION_CHANGE_EVENT = "DFSubscriptionChange"
INVALID_HASH = "Invalid user hash."
# Upstream's stand-in user for previews of the subscription page (nothing is looked up or changed).
PREVIEW_USER_ID = "123-preview"
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# A lookup by identifier expects a handful of users; more is a data problem, not a reason to hash all.
_MAX_CANDIDATES = 100
_IN_CHUNK = 500
_COPY_CHUNK = 2000


def subscription_action(session: Session, workspace_id: str, group_id: str, user_id: str) -> Action | None:
    """The user's latest choice for the group, from the SQL copy of its main segment; None without one."""
    return subscription_actions(session, workspace_id, group_id, [user_id]).get(user_id)


def subscription_actions(
    session: Session, workspace_id: str, group_id: str, user_ids: Sequence[str]
) -> dict[str, Action]:
    """`subscription_action` for many users in one query per chunk; users without a choice are absent."""
    canonical = canonical_uuid(group_id)
    if canonical is None:
        return {}
    actions: dict[str, Action] = {}
    for start in range(0, len(user_ids), _IN_CHUNK):
        rows = session.execute(
            select(SegmentAssignment.user_id, SegmentAssignment.in_segment)
            .join(Segment, Segment.id == SegmentAssignment.segment_id)
            .where(
                SegmentAssignment.workspace_id == workspace_id,
                SegmentAssignment.user_id.in_(user_ids[start : start + _IN_CHUNK]),
                Segment.workspace_id == workspace_id,
                Segment.subscription_group_id == canonical,
                Segment.name == f"subscriptionGroup-{canonical}",
            )
        )
        actions.update(
            (user_id, "Subscribe" if in_segment else "Unsubscribe") for user_id, in_segment in rows
        )
    return actions


def is_subscribed(session: Session, workspace_id: str, group: SubscriptionGroup, user_id: str) -> bool:
    """Whether a message of `group` may be sent to the user (§7.5).

    :raises NotFound: the group is another workspace's.
    """
    if group.workspace_id != workspace_id:
        raise NotFound("Subscription group not found")
    return may_send(group.type, subscription_action(session, workspace_id, group.id, user_id))


def may_send(group_type: SubscriptionGroupType, action: Action | None) -> bool:
    """The gating rule of §7.5: a choice decides; without one, opt-out groups send and opt-in ones do not."""
    if action is None:
        return group_type == SubscriptionGroupType.OPT_OUT
    return action == "Subscribe"


@dataclass(frozen=True)
class GroupState:
    """A subscription group as one user stands in it."""

    id: str
    name: str
    channel: str
    subscribed: bool


def user_subscriptions(session: Session, workspace_id: str, user_id: str) -> list[GroupState]:
    """The user's state in every subscription group of the workspace, groups in name order."""
    groups = load_subscriptions(session, workspace_id)
    channels: dict[str, str] = {
        group_id: channel
        for group_id, channel in session.execute(
            select(SubscriptionGroup.id, SubscriptionGroup.channel).where(
                SubscriptionGroup.workspace_id == workspace_id
            )
        )
    }
    members: dict[str, bool] = {
        segment_id: in_segment
        for segment_id, in_segment in session.execute(
            select(SegmentAssignment.segment_id, SegmentAssignment.in_segment).where(
                SegmentAssignment.workspace_id == workspace_id,
                SegmentAssignment.user_id == user_id,
                SegmentAssignment.segment_id.in_(
                    [g.member_segment for g in groups.values() if g.member_segment]
                ),
            )
        )
    }
    return [
        GroupState(
            group.group_id,
            group.name,
            str(channels[group.group_id]),
            members.get(group.member_segment or "", group.default),
        )
        for group in groups.values()
    ]


class UnknownSubscriptionGroup(InvalidInput):
    def __init__(self, group_id: str, field: str) -> None:
        super().__init__(f"{field} names unknown subscription group {_printable(group_id)}", field=field)


@dataclass(frozen=True)
class SubscriptionUpdate:
    """One user's changes: group id → subscribed."""

    user_id: str
    changes: Mapping[str, bool]


def update_user_subscriptions(
    session: Session,
    write_events: WriteEvents,
    store: EventStore,
    workspace_id: str,
    user_id: str,
    changes: Mapping[str, bool],
) -> None:
    """Apply one user's changes (group id → subscribed); groups not named keep their state.

    :raises UnknownSubscriptionGroup: a group id that is not one of the workspace's groups.
    """
    update_subscriptions(session, write_events, store, workspace_id, [SubscriptionUpdate(user_id, changes)])


def update_subscriptions(
    session: Session,
    write_events: WriteEvents,
    store: EventStore,
    workspace_id: str,
    updates: Sequence[SubscriptionUpdate],
    *,
    extra_rows: Sequence[EventRow] = (),
    field: str = "changes",
    now: datetime | None = None,
) -> None:
    """Apply several users' changes: the change events (and `extra_rows`) in one durable write, then
    the memberships in one ClickHouse insert and in the SQL copies (the caller's transaction).

    A (user, group) named twice takes its last value. Nothing is written when a group is unknown.
    :raises UnknownSubscriptionGroup: a group id that is not one of the workspace's groups (`field`
        names where it came from).
    """
    known = load_subscriptions(session, workspace_id)
    wanted: dict[tuple[str, str], tuple[Subscription, bool]] = {}
    for update in updates:
        for group_id, subscribed in update.changes.items():
            group = known.get(canonical_uuid(group_id) or "")
            if group is None:
                raise UnknownSubscriptionGroup(group_id, field)
            wanted[(update.user_id, group.group_id)] = (group, subscribed)
    now = now or datetime.now(UTC)
    rows = list(extra_rows)
    for (user_id, group_id), (_, subscribed) in wanted.items():
        rows += change_event_rows(workspace_id, user_id, group_id, subscribed, now)
    if rows:
        write_events(rows)
    # Stamped after the events are stored, so they are never newer than the memberships they imply.
    assigned_at = _to_millisecond(datetime.now(UTC))
    assignments: list[Assignment] = []
    for (user_id, _), (group, subscribed) in wanted.items():
        for segment_id, member in (
            (group.member_segment, subscribed),
            (group.unsubscribed_segment, not subscribed),
        ):
            if segment_id is not None:
                assignments.append(Assignment.of_segment(workspace_id, segment_id, user_id, member))
    if assignments:
        write_assignments(store, assignments, at=assigned_at)
        _copy_to_sql(session, assignments, assigned_at)


def change_event_rows(
    workspace_id: str, user_id: str, group_id: str, subscribed: bool, now: datetime
) -> list[EventRow]:
    """Upstream's `buildSubscriptionChangeEvent`: a track event with a fresh messageId."""
    message = {
        "userId": user_id,
        "messageId": str(uuid.uuid4()),
        "timestamp": iso_ms(now),
        "event": SUBSCRIPTION_CHANGE_EVENT,
        "properties": {"subscriptionId": group_id, "action": "Subscribe" if subscribed else "Unsubscribe"},
    }
    return build_rows(workspace_id, "track", message, now)


def find_user_by_hash(
    session: Session, workspace_id: str, *, identifier: str, identifier_key: str, user_hash: str
) -> str:
    """The id of the user a subscription link was made for (§5.3): among the users whose current
    `identifier_key` user property is `identifier`, the one whose hash matches.

    :raises NotAuthenticated: no such user, a wrong hash, or an inactive workspace.
    """
    if _HEX_DIGEST.fullmatch(user_hash) is None or canonical_uuid(workspace_id) is None:
        raise NotAuthenticated(INVALID_HASH)
    workspace_id = canonical_uuid(workspace_id) or workspace_id
    secret = session.scalar(
        select(Secret.value)
        .join(Workspace, Workspace.id == Secret.workspace_id)
        .where(
            Secret.workspace_id == workspace_id,
            Secret.name == SUBSCRIPTION_SECRET_NAME,
            Workspace.status == WorkspaceStatus.ACTIVE,
        )
    )
    if not secret or not _encodable(identifier) or not _encodable(identifier_key):
        raise NotAuthenticated(INVALID_HASH)
    candidates = find_users_by_property(session, workspace_id, identifier_key, [identifier]).get(
        identifier, []
    )
    found: str | None = None
    for user_id in candidates[:_MAX_CANDIDATES]:
        expected = subscription_hash(
            workspace_id=workspace_id,
            user_id=user_id,
            identifier=identifier,
            identifier_key=identifier_key,
            secret=secret,
        )
        if hmac.compare_digest(expected.encode(), user_hash.encode()) and found is None:
            found = user_id
    if found is None:
        raise NotAuthenticated(INVALID_HASH)
    return found


def find_users_by_property(
    session: Session, workspace_id: str, property_name: str, values: Collection[str]
) -> dict[str, list[str]]:
    """value → ids of the users whose current value of the user property named `property_name` is it
    (a string, or a number written as that string), most recently assigned first."""
    property_id = session.scalar(
        select(UserProperty.id).where(
            UserProperty.workspace_id == workspace_id, UserProperty.name == property_name
        )
    )
    wanted = {value for value in values if value and _encodable(value)}
    if property_id is None or not wanted:
        return {}
    # The copies hold JSON text as ClickHouse wrote it; ask for each spelling a value can have there.
    spellings = sorted({spelling for value in wanted for spelling in _json_spellings(value)})
    found: dict[str, list[tuple[datetime, str]]] = {}
    for start in range(0, len(spellings), _IN_CHUNK):
        for user_id, raw, assigned_at in session.execute(
            select(
                UserPropertyAssignment.user_id,
                UserPropertyAssignment.value,
                UserPropertyAssignment.assigned_at,
            ).where(
                UserPropertyAssignment.workspace_id == workspace_id,
                UserPropertyAssignment.user_property_id == property_id,
                UserPropertyAssignment.value.in_(spellings[start : start + _IN_CHUNK]),
            )
        ):
            value = _parsed_identifier(raw)
            if value in wanted:
                found.setdefault(value, []).append((assigned_at, user_id))
    return {value: [user for _, user in sorted(users, reverse=True)] for value, users in found.items()}


def _json_spellings(value: str) -> set[str]:
    spellings = {json.dumps(value), json.dumps(value, ensure_ascii=False)}
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        spellings.add(value)  # a phone number stored as a JSON number
    return spellings


def _parsed_identifier(raw: str) -> str | None:
    try:
        return as_identifier(json.loads(raw))
    except ValueError:
        return None


def _copy_to_sql(session: Session, assignments: Sequence[Assignment], assigned_at: datetime) -> None:
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    insert = dialect.insert(SegmentAssignment.__table__)
    statement = insert.on_conflict_do_update(
        index_elements=["workspace_id", "segment_id", "user_id"],
        set_={"in_segment": insert.excluded.in_segment, "assigned_at": insert.excluded.assigned_at},
    )
    rows = [
        {
            "workspace_id": a.workspace_id,
            "segment_id": a.computed_property_id,
            "user_id": a.user_id,
            "in_segment": a.segment_value,
            "assigned_at": assigned_at,
        }
        for a in assignments
    ]
    for start in range(0, len(rows), _COPY_CHUNK):
        session.execute(statement, rows[start : start + _COPY_CHUNK])


def _to_millisecond(moment: datetime) -> datetime:
    # ClickHouse keeps milliseconds; the SQL copy keeps the same instant.
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def _encodable(text: str) -> bool:
    """False for text with a lone UTF-16 surrogate (from a JSON `\\ud800` escape): no store takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
