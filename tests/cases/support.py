"""Factories for the case tests: policies with SLA targets, and cases opened under them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from inbox.cases import Case, CasePolicies, InboxPolicy, SlaTargets, open_case

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
TARGETS = {
    "urgent": SlaTargets(first_response=H / 4, next_response=H / 2, resolution=4 * H),
    "high": SlaTargets(first_response=H, next_response=2 * H, resolution=8 * H),
    "normal": SlaTargets(first_response=4 * H, next_response=8 * H, resolution=24 * H),
}


def policies(inboxes: dict[str, InboxPolicy] | None = None, **fields: Any) -> CasePolicies:
    """Every inbox alike (InboxPolicy `fields` over test defaults), but `inboxes`."""
    fields.setdefault("targets", TARGETS)
    fields.setdefault("reopen_window", timedelta(days=7))
    fields.setdefault("auto_close_after", timedelta(days=4))
    return CasePolicies(InboxPolicy(**fields), inboxes or {})


def new_case(
    priority: str = "high", at: datetime = T0, under: CasePolicies | None = None, **fields: Any
) -> Case:
    """A case opened at `at` in inbox "support", then given `fields`."""
    case = open_case(1, fields.pop("inbox", "support"), priority, at, under or policies())
    return dataclasses.replace(case, **fields)
