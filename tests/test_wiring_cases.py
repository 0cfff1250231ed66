"""The [cases] policies as the processes get them (`omnidesk.wiring.case_policies`): the
[ingest] reopen window and the [routing.sla_seconds] first-response targets fill in what
[cases] leaves out, and `omnidesk config check` refuses a bad [cases]."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inbox.cases import AssignmentMode, SlaTargets
from inbox.config import load
from inbox.errors import ConfigError
from omnidesk.wiring import case_policies, check_sections

BASE = 'secret_key = "0123456789abcdef0123"\ninboxes = ["default", "billing"]\n'


def config(text: str):
    return load("config.toml", text=BASE + text, environ={})


def test_the_routing_sla_and_the_ingest_window_fill_in_what_cases_leaves_out():
    policies = case_policies(
        config(
            "[ingest]\nreopen_window_seconds = 3600\n"
            "[routing.sla_seconds]\nurgent = 60\nhigh = 300\n"
            '[cases]\nauto_close_after = "2d"\n'
            '[cases.sla]\nhigh = { first_response = "2h", resolution = "1d" }\n'
            '[cases.inboxes.billing]\nassignment = "pull"\n'
        )
    )
    default = policies.default
    assert default.reopen_window == timedelta(hours=1)
    assert default.auto_close_after == timedelta(days=2)
    assert default.targets["urgent"] == SlaTargets(first_response=timedelta(seconds=60))
    assert default.targets["high"] == SlaTargets(
        first_response=timedelta(hours=2), resolution=timedelta(days=1)
    )
    assert policies.for_inbox("billing").assignment is AssignmentMode.PULL
    assert policies.for_inbox("default") is default


def test_without_a_cases_section_the_routing_targets_still_apply():
    policies = case_policies(config("[routing.sla_seconds]\nnormal = 600\n"))
    assert policies.default.targets == {"normal": SlaTargets(timedelta(minutes=10))}
    assert case_policies(config("")).default.targets == {}


def test_config_check_refuses_a_bad_cases_section():
    with pytest.raises(ConfigError) as caught:
        check_sections(config('[cases.inboxes.nowhere]\nassignment = "push"\n'))
    assert "unknown inbox 'nowhere'" in str(caught.value) and "config.toml:" in str(caught.value)
