"""The `[cases]` config section, read once into `CasePolicies` (plain data).

    policies = read_case_policies(
        config.section("cases"),
        priorities=config.priorities,
        inboxes=config.inboxes,
        reopen_window_seconds=config.ingest.reopen_window_seconds,
    )

`[cases]` holds what applies to every inbox; `[cases.inboxes.NAME]` overrides any of it
for one inbox, key by key (an SLA target per priority and metric; business hours as a
whole table). `reopen_window_seconds` is read from `[ingest]` for every inbox and may be
overridden per inbox. Durations are a number of seconds or text such as "90s", "15m",
"4h", "2d", "1h30m". Every mistake raises `ConfigError` through `ConfigSection.error`,
naming the file, the line, the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from inbox.cases.hours import DAYS, BusinessHours, Range, parse_range
from inbox.cases.policy import PAUSABLE, AssignmentMode, CasePolicies, InboxPolicy
from inbox.cases.priority import Priorities
from inbox.cases.sla import SlaMetric, SlaTargets
from inbox.cases.status import CaseStatus
from inbox.config_section import ConfigSection

__all__ = ["parse_duration", "read_business_hours", "read_case_policies"]

_PART = re.compile(r"\s*(\d+)\s*([dhms])")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_FIX = 'a number of seconds, or text such as "90s", "15m", "4h", "2d", "1h30m"'
_POLICY_KEYS = {"assignment", "auto_close_after", "sla", "business_hours"}
_SLA_KEYS = {"warn_at", "pause_in"}


def parse_duration(value: object) -> timedelta | None:
    """Seconds (a non-negative number) or text of number+unit parts; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    parts = _PART.findall(value)
    if "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", value):
        return None
    return timedelta(seconds=sum(int(n) * _UNIT[u] for n, u in parts))


def _duration(section: ConfigSection, key: str, *, positive: bool) -> timedelta:
    raw = section.raw(key)
    value = parse_duration(raw)
    if value is None:
        raise section.error(key, f"expected a duration, got {raw!r}", fix=_DURATION_FIX)
    if positive and not value:
        raise section.error(key, "must be more than 0", fix="leave the key out for no target")
    return value


def read_business_hours(section: ConfigSection) -> BusinessHours:
    """A `business_hours` table: timezone, mon..sun opening ranges, holidays."""
    name = section.str("timezone")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise section.error(
            "timezone", f"unknown time zone {name!r}", fix='an IANA name, e.g. "Europe/Berlin"'
        ) from None
    week = tuple(_day(section, day) for day in DAYS)
    if not any(week):
        raise section.error(
            None, "opens on no day", fix='give at least one day, e.g. mon = ["09:00-17:00"]'
        )
    holidays = _holidays(section)
    section.reject_unknown({"timezone", "holidays", *DAYS})
    return BusinessHours(zone, week, holidays)


def _day(section: ConfigSection, day: str) -> tuple[Range, ...]:
    ranges: list[Range] = []
    for text in section.str_list(day, []):
        parsed = parse_range(text)
        if parsed is None:
            raise section.error(
                day,
                f"bad opening range {text!r}",
                fix='"HH:MM-HH:MM" going forward within the day, e.g. "09:00-17:30"; split'
                ' overnight hours: mon = ["22:00-24:00"], tue = ["00:00-06:00"]',
            )
        ranges.append(parsed)
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            raise section.error(day, "two opening ranges overlap", fix="merge them into one")
    return tuple(ranges)


def _holidays(section: ConfigSection) -> frozenset[date]:
    raw = section.raw("holidays", [])
    found: set[date] = set()
    for item in raw if isinstance(raw, list) else [raw]:
        if isinstance(item, date) and not isinstance(item, datetime):
            found.add(item)
            continue
        try:
            found.add(date.fromisoformat(str(item)))
        except ValueError:
            raise section.error("holidays", f"not a date: {item!r}", fix='["2026-12-25"]') from None
    return frozenset(found)


def _targets(section: ConfigSection, base: SlaTargets) -> SlaTargets:
    given = {
        metric.value: _duration(section, metric.value, positive=True)
        for metric in SlaMetric
        if metric.value in section
    }
    section.reject_unknown({m.value for m in SlaMetric})
    return dataclasses.replace(base, **given)


def _sla(section: ConfigSection, base: InboxPolicy, levels: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "warn_at" in section:
        warn_at = section.float("warn_at")
        if not 0 < warn_at < 1:
            raise section.error("warn_at", f"must be between 0 and 1, got {warn_at}", fix="0.8")
        out["warn_at"] = warn_at
    if "pause_in" in section:
        names = section.str_list("pause_in")
        allowed = sorted(s.value for s in PAUSABLE)
        for name in names:
            if name not in allowed:
                raise section.error(
                    "pause_in", f"{name!r} cannot pause SLA clocks", fix=f"any of {allowed}"
                )
        out["pause_in"] = frozenset(CaseStatus(name) for name in names)
    targets = dict(base.targets)
    for key in section.keys():
        if key in _SLA_KEYS:
            continue
        if key not in levels:
            close = difflib.get_close_matches(key, [*levels, *sorted(_SLA_KEYS)], n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"a level of {list(levels)}"
            raise section.error(key, "not a priority level nor an SLA setting", fix=fix)
        targets[key] = _targets(section.section(key), base.targets_for(key))
    out["targets"] = targets
    return out


def _policy(
    section: ConfigSection, base: InboxPolicy, levels: Sequence[str], extra: set[str]
) -> InboxPolicy:
    changes: dict[str, Any] = {}
    if "assignment" in section:
        modes = [m.value for m in AssignmentMode]
        changes["assignment"] = AssignmentMode(section.str("assignment", choices=modes))
    if "auto_close_after" in section:
        after = _duration(section, "auto_close_after", positive=False)
        changes["auto_close_after"] = after or None
    if "reopen_window_seconds" in extra and "reopen_window_seconds" in section:
        seconds = section.int("reopen_window_seconds", min=0)
        changes["reopen_window"] = timedelta(seconds=seconds)
    if "sla" in section:
        changes.update(_sla(section.section("sla"), base, levels))
    if "business_hours" in section:
        changes["calendar"] = read_business_hours(section.section("business_hours"))
    return dataclasses.replace(base, **changes)


def read_case_policies(
    section: ConfigSection,
    *,
    priorities: Sequence[str],
    inboxes: Sequence[str],
    reopen_window_seconds: int,
    first_response_defaults: Mapping[str, float] | None = None,
) -> CasePolicies:
    """Validate `[cases]`. `first_response_defaults` (seconds per priority: what
    `[routing.sla_seconds]` says today) are the first-response targets `[cases.sla]`
    does not name."""
    levels = tuple(priorities)
    targets = {
        level: SlaTargets(first_response=timedelta(seconds=seconds))
        for level, seconds in (first_response_defaults or {}).items()
        if level in levels
    }
    built_in = InboxPolicy(reopen_window=timedelta(seconds=reopen_window_seconds), targets=targets)
    if "reopen_window_seconds" in section:
        raise section.error(
            "reopen_window_seconds",
            "is read from [ingest] for every inbox",
            fix="move it to [ingest], or to [cases.inboxes.NAME] for one inbox",
        )
    default = _policy(section, built_in, levels, set())
    per_inbox: dict[str, InboxPolicy] = {}
    tables = section.section("inboxes")
    for name in tables.keys():
        if name not in inboxes:
            raise tables.error(
                name, f"unknown inbox {name!r}", fix=f"one of {list(inboxes)} (`inboxes`)"
            )
        sub = tables.section(name)
        per_inbox[name] = _policy(sub, default, levels, {"reopen_window_seconds"})
        sub.reject_unknown(_POLICY_KEYS | {"reopen_window_seconds"})
    section.reject_unknown(_POLICY_KEYS | {"inboxes"})
    return CasePolicies(default, per_inbox, Priorities(levels))
