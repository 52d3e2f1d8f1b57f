"""Subscription-group CSV uploads (Dittofeed §6.9 `upload-csv`): reading the file, and subscribing or
unsubscribing each row's user.

The file's first line names the columns; it needs an `id` or an `email` column, and each row a
non-empty `id` or `email`. An optional `action` column says `subscribe` (also when empty) or
`unsubscribe`. Every other column, `email` included, becomes a trait of the user, written as an
identify event. A row without an id names the user whose current `email` user property is the row's
email, or a new user with a random id (rows sharing that email share the new id).

Errors carry upstream's typed bodies: `MissingHeaders`, `RowValidationErrors` (with `rowErrors`),
`InvalidActionValue` (with `actionValue`) and `ParseError`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.events import EventRow, build_rows
from engine.manual_segments import WriteEvents
from engine.messaging.subscriptions import (
    SubscriptionUpdate,
    UnknownSubscriptionGroup,
    find_users_by_property,
    update_subscriptions,
)
from engine.resources import canonical_uuid, iso_ms
from engine.storage.event_store import EventStore
from engine.users import load_subscriptions

GROUP_HEADER = "df-subscription-group-id"
MISSING_ID = 'row must have a non-empty "email" or "id" field'
_ACTIONS = {"": True, "subscribe": True, "unsubscribe": False}


class SubscriptionCsvError(InvalidInput):
    """An upload refused before anything was written; `body` is upstream's typed error."""

    def __init__(self, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(message, field="file", body={"type": error_type, "message": message, **extra})


@dataclass(frozen=True)
class SubscriptionRow:
    user_id: str
    email: str
    subscribe: bool
    traits: dict[str, str]


def parse_subscription_csv(data: bytes) -> list[SubscriptionRow]:
    """The rows of an uploaded file, in file order; blank lines are skipped.

    :raises SubscriptionCsvError: not UTF-8 CSV, no id/email column, rows naming no one (all listed),
        or an action that is neither subscribe nor unsubscribe (the first one).
    """
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte-order mark.
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), strict=True)
        header = next(reader, None)
        if header is None or ("id" not in header and "email" not in header):
            raise SubscriptionCsvError("MissingHeaders", 'csv must have "id" or "email" headers')
        rows: list[dict[str, str]] = [dict(zip(header, cells, strict=False)) for cells in reader if cells]
    except UnicodeDecodeError:
        raise SubscriptionCsvError("ParseError", "misformatted file: not UTF-8 text") from None
    except csv.Error as error:
        raise SubscriptionCsvError("ParseError", f"misformatted file: {error}") from None
    errors = [
        {"row": index, "error": MISSING_ID}
        for index, row in enumerate(rows)
        if not row.get("id") and not row.get("email")
    ]
    if errors:
        raise SubscriptionCsvError("RowValidationErrors", "csv rows contained errors", rowErrors=errors)
    parsed: list[SubscriptionRow] = []
    for row in rows:
        action = row.pop("action", "")
        subscribe = _ACTIONS.get(action.strip().lower())
        if subscribe is None:
            raise SubscriptionCsvError(
                "InvalidActionValue",
                f'Invalid action value: "{action}". Must be "subscribe" or "unsubscribe".',
                actionValue=action,
            )
        user_id = row.pop("id", "")
        parsed.append(SubscriptionRow(user_id, row.get("email", ""), subscribe, row))
    return parsed


def apply_subscription_csv(
    session: Session,
    write_events: WriteEvents,
    store: EventStore,
    workspace_id: str,
    group_id: str,
    rows: Sequence[SubscriptionRow],
    *,
    now: datetime | None = None,
) -> list[str]:
    """Subscribe or unsubscribe each row's user to the group and record the row's traits; return the
    user ids in row order.

    :raises UnknownSubscriptionGroup: the group is not one of the workspace's.
    """
    group = canonical_uuid(group_id)
    if group is None or group not in load_subscriptions(session, workspace_id):
        raise UnknownSubscriptionGroup(group_id, GROUP_HEADER)
    now = now or datetime.now(UTC)
    emails = {row.email for row in rows if not row.user_id}
    known = find_users_by_property(session, workspace_id, "email", emails)
    # A new user per unknown email, shared by its rows.
    new_ids = {email: str(uuid.uuid4()) for email in emails if email not in known}
    user_ids = [
        row.user_id or (known[row.email][0] if row.email in known else new_ids[row.email]) for row in rows
    ]
    identified: list[EventRow] = []
    for user_id, row in zip(user_ids, rows, strict=True):
        message = {
            "userId": user_id,
            "messageId": str(uuid.uuid4()),
            "timestamp": iso_ms(now),
            "traits": row.traits,
        }
        identified += build_rows(workspace_id, "identify", message, now)
    update_subscriptions(
        session,
        write_events,
        store,
        workspace_id,
        [
            SubscriptionUpdate(user_id, {group: row.subscribe})
            for user_id, row in zip(user_ids, rows, strict=True)
        ],
        extra_rows=identified,
        field=GROUP_HEADER,
        now=now,
    )
    return user_ids
