"""[cases] config: the example parses; overrides per inbox; every mistake names file, line,
key and fix."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from inbox.cases import AssignmentMode, BusinessHours, CaseStatus, SlaTargets
from inbox.cases.hours import WALL_CLOCK
from inbox.cases.settings import parse_duration, read_case_policies
from inbox.config import load
from inbox.errors import ConfigError

BASE = 'secret_key = "0123456789abcdef0123"\ninboxes = ["default", "billing"]\n'
H = timedelta(hours=1)


def policies_from(text: str, path: str = "config.toml", **kw):
    config = load(path, text=None if path.endswith("example.toml") else BASE + text, environ={})
    return read_case_policies(
        config.section("cases"),
        priorities=config.priorities,
        inboxes=config.inboxes,
        reopen_window_seconds=config.ingest.reopen_window_seconds,
        **kw,
    )


def test_the_example_config_parses():
    p = policies_from("", path="config.example.toml")
    assert p.default.assignment is AssignmentMode.PUSH
    assert p.default.auto_close_after == timedelta(days=4)
    assert p.default.warn_at == 0.8
    assert p.default.reopen_window == timedelta(seconds=2592000)
    assert p.default.pause_in == {CaseStatus.PENDING, CaseStatus.ON_HOLD, CaseStatus.SNOOZED}
    assert p.default.targets["urgent"] == SlaTargets(H / 4, H / 2, 4 * H)
    assert p.default.targets["low"] == SlaTargets(first_response=24 * H, resolution=120 * H)
    assert isinstance(p.default.calendar, BusinessHours)
    assert p.default.calendar.holidays == {date(2026, 12, 25), date(2027, 1, 1)}
    own = p.for_inbox("default")
    assert own.assignment is AssignmentMode.BOTH and own.reopen_window == timedelta(days=7)
    assert own.targets["urgent"] == SlaTargets(H / 12, H / 2, 4 * H)  # one target differs
    assert own.calendar == p.default.calendar and own.targets["high"] == p.default.targets["high"]


def test_without_a_cases_section_nothing_is_due_and_work_is_offered():
    p = policies_from("")
    assert p.default.targets == {} and p.default.calendar is WALL_CLOCK
    assert p.default.auto_close_after is None and p.default.assignment is AssignmentMode.PUSH
    assert p.for_inbox("billing") is p.default


def test_first_response_targets_come_from_the_routing_section_unless_cases_names_them():
    p = policies_from(
        '[cases.sla]\nhigh = { first_response = "2h" }\n',
        first_response_defaults={"urgent": 60, "high": 300, "nonsense": 5},
    )
    assert p.default.targets["urgent"] == SlaTargets(first_response=timedelta(seconds=60))
    assert p.default.targets["high"] == SlaTargets(first_response=2 * H)
    assert "nonsense" not in p.default.targets


def test_an_inbox_overrides_key_by_key():
    p = policies_from(
        '[cases]\nauto_close_after = "2d"\n'
        '[cases.sla]\nwarn_at = 0.5\nnormal = { first_response = "4h", resolution = "3d" }\n'
        "[cases.inboxes.billing]\nauto_close_after = 0\n"
        '[cases.inboxes.billing.sla]\npause_in = ["on_hold"]\nnormal = { resolution = "1d" }\n'
        '[cases.inboxes.billing.business_hours]\ntimezone = "America/New_York"\n'
        'sat = ["10:00-14:00"]\n'
    )
    billing = p.for_inbox("billing")
    assert billing.auto_close_after is None  # 0: never
    assert billing.warn_at == 0.5 and billing.pause_in == {CaseStatus.ON_HOLD}
    assert billing.targets["normal"] == SlaTargets(first_response=4 * H, resolution=24 * H)
    assert isinstance(billing.calendar, BusinessHours)
    assert billing.calendar.week[5] == ((600, 840),)
    assert p.for_inbox("default").auto_close_after == timedelta(days=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(minutes=90)),
        ("2d 4h", timedelta(hours=52)),
        ("0", None),
        ("", None),
        ("4 hours", None),
        ("h4", None),
        (-1, None),
        (True, None),
        ([1], None),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            '[cases]\nauto_close_after = "soon"\n',
            4,
            "cases.auto_close_after",
            "expected a duration",
        ),
        ('[cases]\nassignment = "pushy"\n', 4, "cases.assignment", "did you mean 'push'"),
        ('[cases]\nasignment = "push"\n', 4, "cases.asignment", "did you mean 'assignment'"),
        ("[cases]\nreopen_window_seconds = 5\n", 4, "cases.reopen_window_seconds", "[ingest]"),
        ("[cases.sla]\nwarn_at = 1.5\n", 4, "cases.sla.warn_at", "between 0 and 1"),
        ('[cases.sla]\npause_in = ["open"]\n', 4, "cases.sla.pause_in", "cannot pause"),
        (
            '[cases.sla]\nurgnet = { first_response = "1h" }\n',
            4,
            "cases.sla.urgnet",
            "did you mean 'urgent'",
        ),
        (
            '[cases.sla]\nurgent = { first_response = "0s" }\n',
            4,
            "cases.sla.urgent.first_response",
            "more than 0",
        ),
        (
            '[cases.sla]\nurgent = { first_reponse = "1h" }\n',
            4,
            "cases.sla.urgent.first_reponse",
            "did you mean 'first_response'",
        ),
        ("[cases.sla.high]\n\nresolution = -5\n", 5, "cases.sla.high.resolution", "a duration"),
        (
            '[cases.business_hours]\ntimezone = "Mars/Olympus"\n',
            4,
            "cases.business_hours.timezone",
            "unknown time zone",
        ),
        (
            '[cases.business_hours]\ntimezone = "UTC"\nmon = ["17:00-09:00"]\n',
            5,
            "cases.business_hours.mon",
            "bad opening range",
        ),
        (
            '[cases.business_hours]\ntimezone = "UTC"\ntue = ["09:00-12:00", "11:00-13:00"]\n',
            5,
            "cases.business_hours.tue",
            "overlap",
        ),
        ('[cases.business_hours]\ntimezone = "UTC"\n', 3, "cases.business_hours", "no day"),
        (
            '[cases.business_hours]\ntimezone = "UTC"\nmon = ["09:00-17:00"]\n'
            'holidays = ["tomorrow"]\n',
            6,
            "cases.business_hours.holidays",
            "not a date",
        ),
        ('[cases.inboxes.sales]\nassignment = "pull"\n', 3, "cases.inboxes.sales", "unknown inbox"),
        (
            '[cases.inboxes.billing]\nreopen_window_seconds = "a week"\n',
            4,
            "cases.inboxes.billing.reopen_window_seconds",
            "whole number",
        ),
        ("[cases.inboxes.billing]\nwarn_at = 0.5\n", 4, "cases.inboxes.billing.warn_at", "unknown"),
    ],
)
def test_mistakes_name_file_line_key_and_fix(text, line, key, words):
    with pytest.raises(ConfigError) as info:
        policies_from(text)
    err = info.value
    message = str(err)
    assert (err.file, err.line, err.key) == ("config.toml", line, key), message
    assert words in message and err.fix, message
    assert message.startswith(f"config.toml:{line}: {key}: ")
