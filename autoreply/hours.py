"""Business hours: a timezone, weekly opening ranges and holidays (pure, zoneinfo-based).

[autoreply.business_hours]
timezone = "Europe/Paris"
mon = ["09:00-12:30", "13:30-18:00"]
sat = []                      # closed (a missing day is closed too)
holidays = ["2026-12-25"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from inbox.config import ConfigSection

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    tz: ZoneInfo
    weekly: tuple[tuple[tuple[int, int], ...], ...]  # per weekday: (start, end) minutes
    holidays: frozenset[date] = frozenset()

    @classmethod
    def always_open(cls) -> BusinessHours:
        return cls(ZoneInfo("UTC"), tuple(((0, 1440),) for _ in DAYS))

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now.astimezone(self.tz)

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly[local.weekday()])

    def next_open(self, now: datetime) -> datetime | None:
        """The next opening time (local), or None when it never opens in the next 366 days."""
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        for offset in range(367):
            day = (local + timedelta(days=offset)).date()
            if day in self.holidays:
                continue
            for start, _end in self.weekly[day.weekday()]:
                if offset == 0 and start <= minute:
                    continue
                naive = datetime(day.year, day.month, day.day, start // 60, start % 60)
                return naive.replace(tzinfo=self.tz)
        return None

    def today(self, now: datetime) -> str:
        local = self.local(now)
        if local.date() in self.holidays:
            return "closed (holiday)"
        ranges = self.weekly[local.weekday()]
        return ", ".join(f"{_hm(s)}-{_hm(e)}" for s, e in ranges) or "closed"

    def describe(self, now: datetime) -> dict[str, object]:
        """The `business_hours` template variable."""
        nxt = self.next_open(now)
        return {
            "open": self.is_open(now),
            "next_open": nxt.strftime("%A %H:%M") if nxt else "",
            "timezone": str(self.tz.key),
            "today": self.today(now),
        }


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def read_business_hours(section: ConfigSection) -> BusinessHours | None:
    """`[autoreply.business_hours]`, or None when the table is absent."""
    if not section.keys():
        return None
    zone = section.str("timezone")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise section.error(
            "timezone",
            f"unknown time zone {zone!r}",
            fix='e.g. "Europe/Paris", "America/New_York", "UTC"',
        ) from None
    weekly: list[tuple[tuple[int, int], ...]] = []
    for day in DAYS:
        ranges: list[tuple[int, int]] = []
        for text in section.str_list(day, []):
            match = _RANGE.match(text)
            if not match:
                raise section.error(day, f"bad range {text!r}", fix='"09:00-17:30"')
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if m1 > 59 or m2 > 59 or start > 1440 or end > 1440 or start >= end:
                raise section.error(
                    day,
                    f"range {text!r} must go forward within one day",
                    fix='split overnight hours: mon = ["22:00-24:00"], tue = ["00:00-06:00"]',
                )
            ranges.append((start, end))
        weekly.append(tuple(sorted(ranges)))
    holidays: set[date] = set()
    raw = section.raw("holidays", [])
    for item in raw if isinstance(raw, list) else [raw]:
        if isinstance(item, date) and not isinstance(item, datetime):
            holidays.add(item)
            continue
        try:
            holidays.add(date.fromisoformat(str(item)))
        except ValueError:
            raise section.error("holidays", f"bad date {item!r}", fix='"2026-12-25"') from None
    section.reject_unknown({"timezone", "holidays", *DAYS})
    return BusinessHours(tz, tuple(weekly), frozenset(holidays))
