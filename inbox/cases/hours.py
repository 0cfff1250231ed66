"""Working time: how much of a span counts towards an SLA target, and when a target is due.

An SLA target is an amount of *counted* time. An inbox without business hours counts
every second (`WALL_CLOCK`); an inbox with them counts only the seconds they are open
(`BusinessHours`): weekly opening ranges in local wall-clock time of one IANA zone, and
holidays (local dates) on which it stays closed all day. Both answer the same two
questions (`Calendar`):

* `between(start, end)`: the counted time in [start, end);
* `add(start, amount)`: the earliest instant t >= start with `between(start, t) == amount`
  (so `add(start, 0) == start`, and a target of N open hours given outside the hours is
  due N hours after the next opening).

Local wall-clock times become instants through `zoneinfo`. A time that occurs twice (the
hour the clocks go back) is taken at its first occurrence; a time that does not occur (the
hour skipped when the clocks go forward) is taken as the instant the skipped hour ends.
Both keep the mapping from local time to instants monotonic, so a range spanning a
change is as long as the real time it covers (09:00-17:00 on a 23-hour day is still 8 h;
01:00-04:00 across a skipped 02:00-03:00 is 2 h).

Times given and returned are aware; results are in UTC.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = ["DAYS", "WALL_CLOCK", "BusinessHours", "Calendar", "WallClock", "parse_range"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
ZERO = timedelta(0)
_SECOND = timedelta(seconds=1)

Range = tuple[int, int]  # (start, end) minutes after local midnight, 0 <= start < end <= 1440


class Calendar(Protocol):
    """Counted time between instants, and the instant a counted amount is reached."""

    def between(self, start: datetime, end: datetime) -> timedelta: ...

    def add(self, start: datetime, amount: timedelta) -> datetime: ...


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime given to a calendar; use aware times")
    return when.astimezone(UTC)


def _check_amount(amount: timedelta) -> None:
    if amount < ZERO:
        raise ValueError(f"a negative amount of working time: {amount}")


class WallClock:
    """Every second counts (an inbox without business hours)."""

    def between(self, start: datetime, end: datetime) -> timedelta:
        return max(_utc(end) - _utc(start), ZERO)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        _check_amount(amount)
        return _utc(start) + amount


WALL_CLOCK = WallClock()


def parse_range(text: str) -> Range | None:
    """`"09:00-17:30"` as minutes (540, 1050); `24:00` ends a day. None when malformed or
    not going forward within one day."""
    start, sep, end = text.strip().partition("-")
    if not sep:
        return None
    low, high = _minutes(start.strip()), _minutes(end.strip())
    if low is None or high is None or not low < high:
        return None
    return low, high


def _minutes(text: str) -> int | None:
    hours, sep, minutes = text.partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        return None
    if len(hours) not in (1, 2) or int(minutes) > 59:
        return None
    total = int(hours) * 60 + int(minutes)
    return total if total <= DAY_MINUTES else None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours of an inbox. `week` holds, Monday first, each day's ranges sorted and
    apart (`BusinessHours.of` builds one from text and checks it)."""

    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.week) != len(DAYS):
            raise ValueError("business hours need one entry per weekday, Monday first")
        for ranges in self.week:
            for (_, end), (start, _) in itertools.pairwise(ranges):
                if start < end:
                    raise ValueError("the ranges of one day overlap or are out of order")
            if any(not 0 <= s < e <= DAY_MINUTES for s, e in ranges):
                raise ValueError("a range must go forward within one day")
        if not any(self.week):
            raise ValueError("business hours that never open")

    @classmethod
    def of(
        cls,
        zone: str,
        week: Mapping[str, Sequence[str]],
        holidays: Sequence[date] = (),
    ) -> BusinessHours:
        """From `{"mon": ["09:00-17:00"], ...}` (a day left out is closed)."""
        days: list[tuple[Range, ...]] = []
        for day in DAYS:
            parsed = [parse_range(text) for text in week.get(day, ())]
            if None in parsed:
                raise ValueError(f"bad range on {day}: {list(week.get(day, ()))}")
            days.append(tuple(sorted(r for r in parsed if r is not None)))
        return cls(ZoneInfo(zone), tuple(days), frozenset(holidays))

    # -- the calendar ----------------------------------------------------------------------
    def is_open(self, when: datetime) -> bool:
        at = _utc(when)
        first = next(self.periods(at))
        return first[0] <= at

    def between(self, start: datetime, end: datetime) -> timedelta:
        begin, stop = _utc(start), _utc(end)
        total = ZERO
        if stop <= begin:
            return total
        for opens, closes in self.periods(begin):
            if opens >= stop:
                break
            total += min(closes, stop) - opens
        return total

    def add(self, start: datetime, amount: timedelta) -> datetime:
        _check_amount(amount)
        begin = _utc(start)
        if not amount:
            return begin
        left = amount
        for opens, closes in self.periods(begin):
            length = closes - opens
            if length >= left:
                return opens + left
            left -= length
        raise AssertionError("unreachable: open periods never run out")  # pragma: no cover

    def periods(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open periods (UTC) that end after `start`, in order; the first is cut to
        begin at `start`. Endless: business hours open on some weekday, and holidays are
        finitely many."""
        begin = _utc(start)
        day = begin.astimezone(self.zone).date() - timedelta(days=1)
        while True:
            if day not in self.holidays:
                for low, high in self.week[day.weekday()]:
                    opens, closes = self._instant(day, low), self._instant(day, high)
                    if closes > begin and opens < closes:
                        yield max(opens, begin), closes
            day += timedelta(days=1)

    def _instant(self, day: date, minute: int) -> datetime:
        """The instant a local wall-clock time occurs (see the module docstring)."""
        naive = datetime.combine(day, time()) + timedelta(minutes=minute)
        first = naive.replace(tzinfo=self.zone).astimezone(UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) == naive:
            return first
        # skipped by a change of offset: the change itself lies after the instant the
        # later offset gives and at or before the one the earlier offset gives
        low = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        high, after = first, first.astimezone(self.zone).utcoffset()
        while high - low > _SECOND:
            middle = low + _SECOND * ((high - low) // _SECOND // 2)
            if middle.astimezone(self.zone).utcoffset() == after:
                high = middle
            else:
                low = middle
        return high
