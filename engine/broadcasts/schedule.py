"""When a scheduled broadcast sends (Dittofeed §6.5): `scheduledAt` is a naive local datetime, read in
the broadcast's `defaultTimezone`, or, with `useIndividualTimezone`, in each recipient's `timezone`
user property (falling back to the default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The first local clocks to reach a given wall time are at UTC+14.
_EARLIEST_OFFSET = timedelta(hours=14)


def parse_local(scheduled_at: str) -> datetime:
    """The naive local datetime of `scheduledAt` ("2026-11-22T09:00", a space also accepted).

    :raises ValueError: not a naive datetime.
    """
    moment = datetime.fromisoformat(scheduled_at.strip().replace(" ", "T"))
    if moment.tzinfo is not None:
        raise ValueError("scheduledAt is a local time without an offset")
    return moment


def zone_or_none(name: object) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory name
        return None


def moment_in(local: datetime, zone: ZoneInfo | None) -> datetime:
    """The UTC instant at which clocks in `zone` (UTC when None) show `local`."""
    return local.replace(tzinfo=zone or UTC).astimezone(UTC)


def first_moment(local: datetime) -> datetime:
    """The earliest UTC instant at which some clock on Earth shows `local`."""
    return local.replace(tzinfo=UTC) - _EARLIEST_OFFSET
