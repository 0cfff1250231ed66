"""Opening hours of a widget: is a person expected to answer now? (pure)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from inbox.config import ConfigSection

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    zone: ZoneInfo
    week: tuple[tuple[tuple[time, time], ...], ...]  # per weekday, Monday first
    holidays: frozenset[date] = frozenset()

    def open_at(self, when: datetime) -> bool:
        local = when.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None)
        return any(start <= now < end for start, end in self.week[local.weekday()])


def _end(hours: int, minutes: int) -> time:
    return time.max if hours == 24 else time(hours, minutes)


def read_hours(section: ConfigSection) -> BusinessHours:
    name = section.str("timezone")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise section.error(
            "timezone", f"unknown time zone {name!r}", fix='timezone = "Europe/Paris"'
        ) from None
    week = []
    for day in DAYS:
        ranges = []
        for text in section.str_list(day, []):
            match = _RANGE.match(text)
            if not match:
                raise section.error(
                    day, f"bad opening range {text!r}", fix='["09:00-12:30", "13:30-18:00"]'
                )
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = time(h1, m1), _end(h2, m2)
            if end <= start:
                raise section.error(day, f"range {text!r} ends before it starts")
            ranges.append((start, end))
        week.append(tuple(ranges))
    holidays = set()
    for text in section.str_list("holidays", []):
        try:
            holidays.add(date.fromisoformat(text))
        except ValueError:
            raise section.error("holidays", f"not a date: {text!r}", fix='["2026-12-25"]') from None
    section.reject_unknown()
    return BusinessHours(zone, tuple(week), frozenset(holidays))
