"""What one inbox's config says about its cases, as plain data (`inbox.cases.settings` reads
it from the config file): reopen window, auto-close, SLA targets per priority, the
warning fraction, the statuses that pause SLA clocks, business hours, and how work is
handed out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from inbox.cases.hours import WALL_CLOCK, BusinessHours, WallClock
from inbox.cases.priority import Priorities
from inbox.cases.sla import NO_TARGETS, SlaTargets
from inbox.cases.status import CaseStatus

__all__ = ["DEFAULT_PAUSE_IN", "PAUSABLE", "AssignmentMode", "CasePolicies", "InboxPolicy"]


class AssignmentMode(enum.StrEnum):
    """How an inbox's waiting conversations reach agents."""

    PUSH = "push"  # the router offers each to an agent, who accepts it
    PULL = "pull"  # agents take the next one themselves ("take next")
    BOTH = "both"  # offers, and agents may also take the next one

    @property
    def offers(self) -> bool:
        return self is not AssignmentMode.PULL

    @property
    def takes_next(self) -> bool:
        return self is not AssignmentMode.PUSH


# the statuses in which SLA clocks may stop (open counts; solved and closed end clocks)
PAUSABLE = frozenset({CaseStatus.PENDING, CaseStatus.ON_HOLD, CaseStatus.SNOOZED})
DEFAULT_PAUSE_IN = PAUSABLE
DEFAULT_REOPEN_WINDOW = timedelta(days=30)
DEFAULT_WARN_AT = 0.8


@dataclass(frozen=True, slots=True)
class InboxPolicy:
    reopen_window: timedelta = DEFAULT_REOPEN_WINDOW
    auto_close_after: timedelta | None = None  # None: solved conversations stay solved
    targets: Mapping[str, SlaTargets] = field(default_factory=dict)  # by priority
    warn_at: float = DEFAULT_WARN_AT  # fraction of a target, 0 < warn_at < 1
    pause_in: frozenset[CaseStatus] = DEFAULT_PAUSE_IN
    calendar: BusinessHours | WallClock = WALL_CLOCK
    assignment: AssignmentMode = AssignmentMode.PUSH

    def targets_for(self, priority: str) -> SlaTargets:
        return self.targets.get(priority, NO_TARGETS)

    def pauses(self, status: CaseStatus) -> bool:
        return status in self.pause_in


@dataclass(frozen=True, slots=True)
class CasePolicies:
    """Every inbox's policy (an inbox not named has the default one) and the levels."""

    default: InboxPolicy = field(default_factory=InboxPolicy)
    inboxes: Mapping[str, InboxPolicy] = field(default_factory=dict)
    priorities: Priorities = field(default_factory=Priorities)

    def for_inbox(self, inbox: str) -> InboxPolicy:
        return self.inboxes.get(inbox, self.default)
