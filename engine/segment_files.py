"""CSV files of segments (Dittofeed §6.2): reading a manual segment's upload, and writing every current
segment assignment of a workspace for download.

The upload follows upstream's csv-parser reading: the first line names the columns, an `id` column is
required, blank lines are skipped, and each row needs a non-empty id; the other columns become the
user's traits. The download has upstream's columns, and the user identifiers (`email`, `deviceToken`,
`phone` user properties) where a user has them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.spreadsheet_cells import csv_download
from engine.storage.event_store import EventStore
from engine.storage.resource_models import Segment, SubscriptionGroup, UserProperty

DOWNLOAD_COLUMNS = ("segmentName", "segmentId", "userId", "inSegment", "subscriptionGroupName")
# Upstream's CHANNEL_IDENTIFIERS, in its order: the user property naming each channel's address.
IDENTIFIER_PROPERTIES = ("email", "deviceToken", "phone")
MISSING_ID = 'row must have a non-empty "id" field'


class CsvUploadError(InvalidInput):
    """Upstream's CsvUploadValidationError: `{message, rowErrors?: [{row, error}]}`."""

    def __init__(self, message: str, row_errors: list[dict[str, Any]] | None = None) -> None:
        body: dict[str, Any] = {"message": message}
        if row_errors is not None:
            body["rowErrors"] = row_errors
        super().__init__(message, field="file", body=body)


@dataclass(frozen=True)
class UploadedUser:
    id: str
    traits: dict[str, str]


def parse_users_csv(data: bytes) -> list[UploadedUser]:
    """The users of an uploaded CSV, in file order.

    :raises CsvUploadError: not UTF-8 CSV, no `id` column, or rows without an id (all of them listed).
    """
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte-order mark.
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = next(reader, None)
        if header is None or "id" not in header:
            raise CsvUploadError('csv must have "id" header')
        users: list[UploadedUser] = []
        errors: list[dict[str, Any]] = []
        for cells in reader:
            if not cells:
                continue
            row = dict(zip(header, cells, strict=False))
            user_id = row.pop("id", "")
            if not user_id:
                errors.append({"row": len(users) + len(errors), "error": MISSING_ID})
                continue
            users.append(UploadedUser(user_id, row))
    except UnicodeDecodeError:
        raise CsvUploadError("misformatted file: not UTF-8 text") from None
    except csv.Error as error:
        raise CsvUploadError(f"misformatted file: {error}") from None
    if errors:
        raise CsvUploadError("csv rows contained errors", errors)
    return users


def download_file_name(today: datetime) -> str:
    return f"segment-assignments-{today:%Y-%m-%d}.csv"


def segment_assignments_csv(session: Session, store: EventStore, workspace_id: str) -> str:
    """Every current (segment, user) assignment of the workspace, ordered by segment name then user."""
    segments = {
        row.id: (row.name, row.group_name or "")
        for row in session.execute(
            select(Segment.id, Segment.name, SubscriptionGroup.name.label("group_name"))
            .outerjoin(SubscriptionGroup, SubscriptionGroup.id == Segment.subscription_group_id)
            .where(Segment.workspace_id == workspace_id)
        )
    }
    assignments = store.query(
        "SELECT computed_property_id, user_id, argMax(segment_value, assigned_at)"
        " FROM computed_property_assignments_v2"
        " WHERE workspace_id = {workspace:String} AND type = 'segment'"
        " GROUP BY computed_property_id, user_id",
        {"workspace": workspace_id},
    )
    identifiers = _user_identifiers(session, store, workspace_id)
    lines: list[list[str]] = []
    for segment_id, user_id, in_segment in assignments:
        if segment_id not in segments:
            continue  # deleted while its assignments were being forgotten
        name, group_name = segments[segment_id]
        known = identifiers.get(user_id, {})
        lines.append(
            [name, segment_id, user_id, "true" if in_segment else "false", group_name]
            + [known.get(column, "") for column in IDENTIFIER_PROPERTIES]
        )
    lines.sort(key=lambda line: (line[0], line[2]))
    return csv_download([*DOWNLOAD_COLUMNS, *IDENTIFIER_PROPERTIES], lines)


def _user_identifiers(session: Session, store: EventStore, workspace_id: str) -> dict[str, dict[str, str]]:
    """user id -> identifier property name -> its value, for the string values that are non-empty."""
    names: dict[str, str] = {
        property_id: name
        for property_id, name in session.execute(
            select(UserProperty.id, UserProperty.name).where(
                UserProperty.workspace_id == workspace_id, UserProperty.name.in_(IDENTIFIER_PROPERTIES)
            )
        )
    }
    if not names:
        return {}
    found: dict[str, dict[str, str]] = {}
    for property_id, user_id, raw in store.query(
        "SELECT computed_property_id, user_id, argMax(user_property_value, assigned_at) AS value"
        " FROM computed_property_assignments_v2"
        " WHERE workspace_id = {workspace:String} AND type = 'user_property'"
        " AND computed_property_id IN {properties:Array(String)}"
        " GROUP BY computed_property_id, user_id HAVING value != ''",
        {"workspace": workspace_id, "properties": sorted(names)},
    ):
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, str) and value:
            found.setdefault(user_id, {})[names[property_id]] = value
    return found
