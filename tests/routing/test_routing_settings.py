"""[routing] config: the documented example parses; mistakes name file, line, key, fix."""

from __future__ import annotations

import pytest

from inbox.config import load
from inbox.errors import ConfigError
from routing.settings import EXAMPLE_TOML, RelaxStep, RoutingSettings

BASE = 'secret_key = "0123456789abcdef0123"\n'


def settings_from(text: str) -> RoutingSettings:
    config = load("config.toml", text=BASE + text, environ={})
    return RoutingSettings.from_section(config.section("routing"), config.priorities)


def test_example_parses() -> None:
    s = settings_from(EXAMPLE_TOML)
    assert s.skills == {"billing", "tech", "french", "german", "vip"}
    assert s.capacity["chat"] == 3 and s.capacity["email"] == 10
    assert s.sla_seconds == {"urgent": 60, "high": 300, "normal": 900, "low": 3600}
    assert s.accept_timeout_seconds == 60 and s.offline_grace_seconds == 30
    assert s.requeue_on_offline == {"chat"}
    default = s.queues["default"]
    assert default.steps == (
        RelaxStep(60, drop_optional=True),
        RelaxStep(300, any_agent=True),
    )
    assert s.rules_for("support@example.com").steps == (RelaxStep(120, drop=frozenset({"french"})),)
    assert s.rules_for("unlisted") is default


def test_empty_section_gives_defaults() -> None:
    s = settings_from("")
    assert s.queues == {} and s.sla_seconds == {} and s.accept_timeout_seconds == 60


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ('[routing]\nskills = ["Billing"]\n', 3, "routing.skills", "bad skill name"),
        ("[routing]\naccept_timeout = 5\n", 3, "routing.accept_timeout", "did you mean"),
        (
            "[routing]\naccept_timeout_seconds = 'soon'\n",
            3,
            "routing.accept_timeout_seconds",
            "expected a number",
        ),
        ("[routing.sla_seconds]\nasap = 5\n", 3, "routing.sla_seconds.asap", "not a priority"),
        ("[routing.capacity]\nfax = 5\n", 3, "routing.capacity.fax", "not a channel"),
        ("[routing.capacity]\nchat = -1\n", 3, "routing.capacity.chat", "at least 0"),
        (
            '[routing]\nskills = ["a"]\n[[routing.queues]]\nname = "q"\n'
            '[[routing.queues.relax]]\nafter = 5\ndrop = ["b"]\n',
            8,
            "routing.queues[0].relax[0].drop",
            "unknown skill 'b'",
        ),
        (
            '[[routing.queues]]\nname = "q"\n[[routing.queues.relax]]\nafter = 5\n',
            4,
            "routing.queues[0].relax[0]",
            "must relax something",
        ),
        (
            "[[routing.queues]]\nname = \"q\"\n[[routing.queues.relax]]\nafter = 'x'\n"
            "any_agent = true\n",
            5,
            "routing.queues[0].relax[0].after",
            "expected a number",
        ),
        (
            '[routing]\nrequeue_on_offline = ["fax"]\n',
            3,
            "routing.requeue_on_offline",
            "not a channel",
        ),
    ],
)
def test_errors_name_file_line_and_key(text: str, line: int, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(text)
    err = info.value
    assert err.file == "config.toml"
    assert err.key == key
    assert err.line == line
    assert words in str(err)


def test_duplicate_queue_is_rejected() -> None:
    text = '[[routing.queues]]\nname = "q"\n[[routing.queues]]\nname = "q"\n'
    with pytest.raises(ConfigError, match="defined twice"):
        settings_from(text)
