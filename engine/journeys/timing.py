"""When a journey's time-based nodes are due and which way a random cohort goes (Dittofeed §7.3).

Pure functions of an explicit `now` (timezone-aware UTC): the runner decides when to call them and
stores what they answer as the run's due time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.journeys.definition import (
    CohortChild,
    DelayVariant,
    LocalTimeDelay,
    SecondsDelay,
    UserPropertyDelay,
)

TIMEZONE_PROPERTY = "timezone"
# A unix timestamp below this is read as seconds (up to the year 5138), at or above it as
# milliseconds (from March 1973 on): no date worth waiting for is ambiguous.
_MILLISECONDS_FROM = 1e11


def delay_due(variant: DelayVariant, now: datetime, user_properties: Mapping[str, Any]) -> datetime:
    """When a run that reaches a delay node at `now` moves on; `now` itself means no wait."""
    if isinstance(variant, SecondsDelay):
        return now + timedelta(seconds=variant.seconds)
    if isinstance(variant, LocalTimeDelay):
        return next_local_time(variant, now, user_properties.get(TIMEZONE_PROPERTY))
    return user_property_due(variant, now, user_properties.get(variant.userProperty))


def next_local_time(variant: LocalTimeDelay, now: datetime, user_timezone: Any = None) -> datetime:
    """The next moment, strictly after `now`, that reads `hour:minute` on a wall clock of the user's
    timezone (`user_timezone`, else the variant's `defaultTimezone`, else UTC) on an allowed day of
    the week (0 = Sunday; none listed means every day).

    A wall time that a DST change skips resolves to the same distance past the change (02:30 on a
    night clocks jump from 02:00 to 03:00 is 03:30); one that happens twice is its first occurrence.
    """
    zone = _zone(user_timezone) or _zone(variant.defaultTimezone) or UTC
    allowed = set(variant.allowedDaysOfWeek or range(7))
    wall_time = time(variant.hour, variant.minute or 0)
    today = now.astimezone(zone).date()
    # Eight days always reach an allowed day strictly after now: today may already be past.
    for offset in range(8):
        day = today + timedelta(days=offset)
        if _day_of_week(day) not in allowed:
            continue
        candidate = datetime.combine(day, wall_time, tzinfo=zone).astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: some allowed day is within eight days")


def user_property_due(variant: UserPropertyDelay, now: datetime, value: Any) -> datetime:
    """The property's moment (ISO datetime, unix seconds or unix milliseconds) moved by the offset:
    after it by default, before it with `offsetDirection: "before"`. A moment already past, or a
    value that is no moment, means no wait."""
    moment = parse_moment(value)
    if moment is None:
        return now
    offset = timedelta(seconds=variant.offsetSeconds or 0)
    due = moment - offset if variant.offsetDirection == "before" else moment + offset
    return max(due, now)


def parse_moment(value: Any) -> datetime | None:
    """A user property value as a UTC moment: an ISO 8601 text (no offset means UTC), or a number (or
    numeric text) of unix seconds or milliseconds. None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return _from_unix(float(text))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, int | float):
        return _from_unix(float(value))
    return None


def pick_cohort(children: Sequence[CohortChild], rng: random.Random) -> str | None:
    """Draw r uniformly in [0, 100) and take the first child whose cumulative percent exceeds it;
    None when the percents add up to no more than r (upstream then exits the user)."""
    draw = rng.random() * 100
    cumulative = 0.0
    for child in children:
        cumulative += child.percent
        if draw < cumulative:
            return child.id
    return None


def _from_unix(number: float) -> datetime | None:
    if not math.isfinite(number):
        return None
    seconds = number / 1000 if abs(number) >= _MILLISECONDS_FROM else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, e.g. "America"
        return None


def _day_of_week(day: date) -> int:
    """0 = Sunday, as JavaScript's getDay() counts (Python's weekday() starts at Monday = 0)."""
    return (day.weekday() + 1) % 7
