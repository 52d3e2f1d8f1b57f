"""When delays end and which cohort a user draws (Dittofeed §7.3): pure functions of an explicit now."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.journeys.definition import (
    CohortChild,
    LocalTimeDelay,
    SecondsDelay,
    UserPropertyDelay,
)
from engine.journeys.timing import delay_due, next_local_time, parse_moment, pick_cohort, user_property_due

MONDAY_9_UTC = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def local_time(hour: int, minute: int | None = None, **fields: Any) -> LocalTimeDelay:
    return LocalTimeDelay(type="LocalTime", hour=hour, minute=minute, **fields)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- seconds --------------------------------------------------------------------------------------------


def test_a_seconds_delay_ends_that_many_seconds_later() -> None:
    due = delay_due(SecondsDelay(type="Second", seconds=90.5), MONDAY_9_UTC, {})
    assert due == MONDAY_9_UTC + timedelta(seconds=90.5)


# -- local time -----------------------------------------------------------------------------------------


def test_a_local_time_still_ahead_today_is_today() -> None:
    assert next_local_time(local_time(17, 30), MONDAY_9_UTC) == at("2026-03-02T17:30:00+00:00")


def test_a_local_time_already_past_today_is_tomorrow() -> None:
    assert next_local_time(local_time(8), MONDAY_9_UTC) == at("2026-03-03T08:00:00+00:00")


def test_exactly_now_is_not_ahead() -> None:
    assert next_local_time(local_time(9), MONDAY_9_UTC) == at("2026-03-03T09:00:00+00:00")


def test_the_users_timezone_property_comes_first_then_the_default_then_utc() -> None:
    delay = local_time(9, defaultTimezone="Asia/Tokyo")

    in_paris = delay_due(delay, MONDAY_9_UTC, {"timezone": "Europe/Paris"})
    by_default = delay_due(delay, MONDAY_9_UTC, {})
    unknown_zone = delay_due(delay, MONDAY_9_UTC, {"timezone": "Mars/Olympus_Mons"})
    directory_name = delay_due(delay, MONDAY_9_UTC, {"timezone": "America"})
    no_default = delay_due(local_time(9), MONDAY_9_UTC, {"timezone": 42})

    # 10:00 in Paris (UTC+1 in March) is past 9:00: Tuesday 9:00 Paris.
    assert in_paris == at("2026-03-03T09:00:00+01:00")
    # 18:00 in Tokyo: Tuesday 9:00 Tokyo.
    assert by_default == unknown_zone == directory_name == at("2026-03-03T09:00:00+09:00")
    assert no_default == at("2026-03-03T09:00:00+00:00")


def test_days_not_allowed_are_skipped_counting_sunday_as_zero() -> None:
    friday_noon = at("2026-03-06T12:00:00+00:00")
    mondays_and_wednesdays = local_time(7, 15, allowedDaysOfWeek=[1, 3])
    sundays = local_time(7, allowedDaysOfWeek=[0])

    assert next_local_time(mondays_and_wednesdays, friday_noon) == at("2026-03-09T07:15:00+00:00")
    assert next_local_time(sundays, friday_noon) == at("2026-03-08T07:00:00+00:00")
    # Today is allowed and still ahead.
    assert next_local_time(local_time(13, allowedDaysOfWeek=[5]), friday_noon) == at(
        "2026-03-06T13:00:00+00:00"
    )
    # Today is allowed but past: a whole week on.
    assert next_local_time(local_time(11, allowedDaysOfWeek=[5]), friday_noon) == at(
        "2026-03-13T11:00:00+00:00"
    )
    # No days listed means every day.
    assert next_local_time(local_time(11, allowedDaysOfWeek=[]), friday_noon) == at(
        "2026-03-07T11:00:00+00:00"
    )


def test_the_wall_clock_is_kept_across_a_dst_change() -> None:
    # New York moves from EST (-5) to EDT (-4) at 02:00 on Sunday 8 March 2026.
    saturday_10_new_york = at("2026-03-07T10:00:00-05:00")
    delay = local_time(9, defaultTimezone="America/New_York")

    due = next_local_time(delay, saturday_10_new_york)

    # 9:00 on the wall on Sunday is 13:00 UTC, not the 14:00 that adding a day would give.
    assert due == at("2026-03-08T09:00:00-04:00") == at("2026-03-08T13:00:00+00:00")


def test_a_wall_time_skipped_by_dst_is_the_same_distance_past_the_change() -> None:
    saturday_noon_new_york = at("2026-03-07T12:00:00-05:00")
    due = next_local_time(local_time(2, 30, defaultTimezone="America/New_York"), saturday_noon_new_york)
    assert due == at("2026-03-08T03:30:00-04:00")


def test_a_wall_time_that_happens_twice_is_its_first_occurrence() -> None:
    # Clocks fall back from 02:00 EDT to 01:00 EST on Sunday 1 November 2026.
    saturday_noon_new_york = at("2026-10-31T12:00:00-04:00")
    due = next_local_time(local_time(1, 30, defaultTimezone="America/New_York"), saturday_noon_new_york)
    assert due == at("2026-11-01T01:30:00-04:00")


# -- user property --------------------------------------------------------------------------------------


TRIAL_ENDS = at("2026-03-10T12:00:00+00:00")


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-10T12:00:00Z",
        "2026-03-10T14:00:00+02:00",
        "2026-03-10T12:00:00",  # no offset: UTC
        int(TRIAL_ENDS.timestamp()),  # unix seconds
        int(TRIAL_ENDS.timestamp() * 1000),  # unix milliseconds
        float(TRIAL_ENDS.timestamp()),
        str(int(TRIAL_ENDS.timestamp() * 1000)),
    ],
)
def test_a_moment_is_read_from_iso_text_unix_seconds_or_unix_milliseconds(value: Any) -> None:
    assert parse_moment(value) == TRIAL_ENDS


@pytest.mark.parametrize("value", [None, True, "soon", "", {"at": 1}, [1], float("nan")])
def test_anything_else_is_no_moment(value: Any) -> None:
    assert parse_moment(value) is None


def test_a_user_property_delay_waits_until_the_moment_moved_by_its_offset() -> None:
    def delay(**fields: Any) -> UserPropertyDelay:
        return UserPropertyDelay(type="UserProperty", userProperty="trialEndsAt", **fields)

    value = "2026-03-10T12:00:00Z"
    assert user_property_due(delay(), MONDAY_9_UTC, value) == TRIAL_ENDS
    assert user_property_due(delay(offsetSeconds=3600), MONDAY_9_UTC, value) == TRIAL_ENDS + timedelta(
        hours=1
    )
    before = delay(offsetSeconds=86400, offsetDirection="before")
    assert user_property_due(before, MONDAY_9_UTC, value) == TRIAL_ENDS - timedelta(days=1)
    after = delay(offsetSeconds=60, offsetDirection="after")
    assert delay_due(after, MONDAY_9_UTC, {"trialEndsAt": value}) == TRIAL_ENDS + timedelta(minutes=1)


def test_a_user_property_moment_already_past_or_missing_means_no_wait() -> None:
    delay = UserPropertyDelay(type="UserProperty", userProperty="trialEndsAt", offsetSeconds=3600)
    assert user_property_due(delay, MONDAY_9_UTC, "2026-03-02T07:00:00Z") == MONDAY_9_UTC
    assert user_property_due(delay, MONDAY_9_UTC, "next tuesday") == MONDAY_9_UTC
    assert delay_due(delay, MONDAY_9_UTC, {}) == MONDAY_9_UTC


# -- random cohort --------------------------------------------------------------------------------------


class Drawing(random.Random):
    """A Random whose draws are given, so a test says which cohort a draw falls in."""

    def __init__(self, *draws: float) -> None:
        super().__init__()
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


COHORTS = [
    CohortChild(id="control", percent=20),
    CohortChild(id="variant-a", percent=30),
    CohortChild(id="variant-b", percent=50),
]


@pytest.mark.parametrize(
    ("draw", "cohort"),
    [(0.0, "control"), (0.1999, "control"), (0.20, "variant-a"), (0.4999, "variant-a"), (0.5, "variant-b")],
)
def test_the_first_child_whose_cumulative_percent_exceeds_the_draw_is_taken(draw: float, cohort: str) -> None:
    assert pick_cohort(COHORTS, Drawing(draw)) == cohort


def test_a_draw_beyond_percents_that_add_up_to_less_than_100_picks_none() -> None:
    short = [CohortChild(id="a", percent=30), CohortChild(id="b", percent=30)]
    assert pick_cohort(short, Drawing(0.65)) is None
    assert pick_cohort(short, Drawing(0.55)) == "b"


def test_a_seeded_random_draws_the_same_cohorts_every_time() -> None:
    def draws(seed: int) -> list[str | None]:
        rng = random.Random(seed)
        return [pick_cohort(COHORTS, rng) for _ in range(50)]

    assert draws(11) == draws(11)
    assert set(draws(11)) == {"control", "variant-a", "variant-b"}
