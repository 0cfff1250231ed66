"""Working time: examples across DST changes, and properties of `add` and `between` over
random weekly hours, holidays and start times (Europe/Berlin, America/New_York, ...)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbox.cases.hours import DAYS, WALL_CLOCK, BusinessHours, parse_range

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = {day: ["09:00-17:00"] for day in DAYS[:5]}
H = timedelta(hours=1)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


# -- examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-17:30", (540, 1050)),
        (" 9:05 - 12:00 ", (545, 720)),
        ("00:00-24:00", (0, 1440)),
        ("22:00-24:00", (1320, 1440)),
        ("17:00-09:00", None),
        ("09:00-09:00", None),
        ("09:60-10:00", None),
        ("24:00-24:30", None),
        ("9-17", None),
        ("09:00", None),
        ("0900-1700", None),
    ],
)
def test_ranges_are_read_strictly(text, expected):
    assert parse_range(text) == expected


def test_a_target_given_on_friday_is_due_on_monday_after_the_spring_change():
    hours = BusinessHours.of("Europe/Berlin", OFFICE)
    start = local(BERLIN, 2026, 3, 27, 9)  # Friday; the clocks go forward on Sunday the 29th
    due = hours.add(start, 16 * H)
    assert due == local(BERLIN, 2026, 3, 30, 17)  # Monday 17:00 CEST
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 15, tzinfo=UTC)
    assert hours.between(start, due) == 16 * H


def test_a_target_given_after_hours_counts_from_the_next_opening():
    hours = BusinessHours.of("America/New_York", OFFICE)
    start = local(NEW_YORK, 2026, 10, 30, 18)  # Friday evening; clocks go back on Nov 1st
    assert not hours.is_open(start)
    assert hours.add(start, 30 * timedelta(minutes=1)) == local(NEW_YORK, 2026, 11, 2, 9, 30)
    assert hours.add(start, timedelta(0)) == start


@pytest.mark.parametrize(
    ("zone", "day", "length"),
    [
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("Europe/Berlin", date(2026, 6, 1), 24),
    ],
)
def test_a_day_open_around_the_clock_is_as_long_as_the_day_really_is(zone, day, length):
    hours = BusinessHours.of(zone, {d: ["00:00-24:00"] for d in DAYS})
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = start.replace(tzinfo=None) + timedelta(days=1)
    assert hours.between(start, end.replace(tzinfo=tz)) == length * H


def test_office_hours_are_eight_real_hours_on_the_days_the_clocks_change():
    hours = BusinessHours.of("Europe/Berlin", {d: ["01:00-04:00"] for d in DAYS})
    # 01:00-04:00 across the skipped 02:00-03:00 is 2 h; across the repeated hour, 4 h
    spring = local(BERLIN, 2026, 3, 29, 0)
    autumn = local(BERLIN, 2026, 10, 25, 0)
    assert hours.between(spring, spring + 12 * H) == 2 * H
    assert hours.between(autumn, autumn + 12 * H) == 4 * H


def test_a_range_starting_in_the_skipped_hour_opens_when_the_hour_ends():
    hours = BusinessHours.of("Europe/Berlin", {"sun": ["02:30-03:30"]})
    opens, closes = next(hours.periods(local(BERLIN, 2026, 3, 28, 12)))
    assert opens == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 03:00 CEST, the skip's end
    assert closes == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_holidays_are_closed_all_day():
    hours = BusinessHours.of("Europe/Berlin", OFFICE, [date(2026, 12, 24), date(2026, 12, 25)])
    start = local(BERLIN, 2026, 12, 23, 16)
    assert hours.add(start, 2 * H) == local(BERLIN, 2026, 12, 28, 10)
    assert not hours.is_open(local(BERLIN, 2026, 12, 24, 10))


def test_business_hours_refuse_what_cannot_be_counted():
    with pytest.raises(ValueError, match="never open"):
        BusinessHours.of("UTC", {})
    with pytest.raises(ValueError, match="overlap"):
        BusinessHours(ZoneInfo("UTC"), (((540, 720), (700, 800)), (), (), (), (), (), ()))
    with pytest.raises(ValueError, match="naive"):
        BusinessHours.of("UTC", OFFICE).add(datetime(2026, 1, 1), H)
    with pytest.raises(ValueError, match="negative"):
        WALL_CLOCK.add(datetime(2026, 1, 1, tzinfo=UTC), -H)


def test_the_wall_clock_counts_every_second():
    start = datetime(2026, 3, 29, tzinfo=UTC)
    assert WALL_CLOCK.add(start, 5 * H) == start + 5 * H
    assert WALL_CLOCK.between(start, start + 5 * H) == 5 * H
    assert WALL_CLOCK.between(start + H, start) == timedelta(0)


# -- properties -------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# local dates of clock changes in 2026, where the interesting starts are
CHANGES = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
]


@st.composite
def day_ranges(draw, avoid_changes: bool = False) -> list[str]:
    """0-3 ranges of a day, as text. With `avoid_changes`, no boundary lies between
    00:30 and 03:30, where local times are skipped or repeated on a change day."""
    allowed = [m for m in range(0, 1441, 15) if not (avoid_changes and 30 <= m <= 210)]
    points = sorted(draw(st.lists(st.sampled_from(allowed), max_size=4, unique=True)))
    pairs = [points[i : i + 2] for i in range(0, len(points) - 1, 2)]
    return [f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in pairs]


@st.composite
def business_hours(draw, avoid_changes: bool = False) -> BusinessHours:
    week = {day: draw(day_ranges(avoid_changes)) for day in DAYS}
    if not any(week.values()):
        week["wed"] = ["10:00-11:00"]
    holidays = draw(st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=4))
    return BusinessHours.of(draw(st.sampled_from(ZONES)), week, holidays)


starts = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        st.sampled_from(CHANGES),
        st.integers(-36 * 60, 36 * 60),
    ),
)
amounts = st.integers(0, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@settings(max_examples=100, deadline=None)
@given(business_hours(), starts, amounts)
def test_the_due_time_is_exactly_the_target_of_open_time_after_the_start(hours, start, amount):
    due = hours.add(start, amount)
    assert due >= start
    assert hours.between(start, due) == amount
    if amount:  # it is due at the end of open time, not after a closed stretch
        assert hours.is_open(due - timedelta(microseconds=1))


@settings(max_examples=100, deadline=None)
@given(business_hours(), starts, amounts, amounts)
def test_more_time_is_never_due_sooner(hours, start, first, second):
    low, high = sorted((first, second))
    assert hours.add(start, low) <= hours.add(start, high)


@settings(max_examples=100, deadline=None)
@given(business_hours(), starts, starts, amounts)
def test_a_later_start_is_never_due_sooner(hours, one, two, amount):
    early, late = sorted((one, two))
    assert hours.add(early, amount) <= hours.add(late, amount)


@settings(max_examples=100, deadline=None)
@given(business_hours(), starts, amounts, amounts)
def test_open_time_adds_up_and_never_exceeds_real_time(hours, start, first, second):
    middle, end = start + first, start + first + second
    assert hours.between(start, end) == hours.between(start, middle) + hours.between(middle, end)
    assert hours.between(start, end) <= end - start


def _open_by_the_clock_on_the_wall(hours: BusinessHours, at: datetime) -> bool:
    """An independent reading of the hours: the wall clock at `at`, looked up in the week."""
    wall = at.astimezone(hours.zone)
    if wall.date() in hours.holidays:
        return False
    minute = wall.hour * 60 + wall.minute
    return any(low <= minute < high for low, high in hours.week[wall.weekday()])


@settings(max_examples=50, deadline=None)
@given(
    business_hours(avoid_changes=True),
    starts.map(lambda t: t.replace(second=0, microsecond=0)),
    st.integers(0, 3 * 24 * 60),
)
def test_open_time_is_the_minutes_the_wall_clock_shows_open(hours, start, minutes):
    """Where no range starts or ends in a skipped or repeated hour, the counted time is
    the number of minutes at which the local wall clock reads an open time."""
    step = timedelta(minutes=1)
    expected = sum(_open_by_the_clock_on_the_wall(hours, start + n * step) for n in range(minutes))
    assert hours.between(start, start + minutes * step) == expected * step
