"""What a status change brings with it, in one place (pure): the solve time, the snooze end,
ownership, and the SLA clocks.

* solved: the solve time is set, every SLA clock is fulfilled, the agent is released;
* solved -> open (a reopen): the solve time is cleared, resolution counts on;
* snoozed: the snooze end is set and the agent is released (the case returns to the
  queue when it wakes: a case set aside for days does not hold an agent's capacity);
* into a status the inbox's `sla.pause_in` names: running clocks pause; out of one into
  a status it does not name: they resume.

`move_status` does not judge whether the move is allowed: `status.check_transition` does
that for what an actor asks, and the system's own moves (a snooze ending, auto-close, a
customer's reply) are allowed by construction.
"""

from __future__ import annotations

from datetime import datetime

from inbox.cases.case import Draft
from inbox.cases.policy import InboxPolicy
from inbox.cases.status import CaseStatus

__all__ = ["move_status", "release"]

_ENDED = frozenset({CaseStatus.SOLVED, CaseStatus.CLOSED})


def release(draft: Draft, reason: str) -> None:
    """No agent holds the case any more."""
    draft.set("assignee_id", None, reason)
    draft.quiet(accepted_at=None)


def move_status(
    draft: Draft,
    to: CaseStatus,
    policy: InboxPolicy,
    reason: str | None = None,
    *,
    until: datetime | None = None,
) -> None:
    old = draft.case.status
    if old is to:
        return
    at, calendar = draft.at, policy.calendar
    sla = draft.case.sla
    draft.set("status", to, reason)
    if to is CaseStatus.SOLVED:
        sla = sla.solved(at, calendar)
        draft.quiet(solved_at=at)
        release(draft, "solved")
    elif old is CaseStatus.SOLVED and to is not CaseStatus.CLOSED:
        sla = sla.reopened(at)
        draft.quiet(solved_at=None)
    if to is CaseStatus.SNOOZED:
        draft.quiet(snoozed_until=until)
        release(draft, "snoozed")
    elif old is CaseStatus.SNOOZED:
        draft.quiet(snoozed_until=None)
    if to not in _ENDED:
        sla = sla.paused(at, calendar) if policy.pauses(to) else sla.resumed(at)
    draft.quiet(sla=sla)
