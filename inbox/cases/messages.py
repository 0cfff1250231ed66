"""What a new message does to its case (pure): a customer's, and an agent's public reply.

A customer's message reopens or wakes the case as `status.on_customer_reply` says, or
starts a new conversation linked to it (the caller then opens that one with
`open_case(..., linked_to=case.id)`), and starts the next-response clock when an agent
had answered. An agent's reply ends the response clocks, and claims a case nobody holds
or accepts the agent's own offer; a case another agent holds is refused with who holds
it, unless the reply is made over the holder (a supervisor stepping in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inbox.cases.activity import SYSTEM, Actor
from inbox.cases.case import Case, Change, Draft
from inbox.cases.due import tick
from inbox.cases.ownership import HOLDABLE, take
from inbox.cases.policy import CasePolicies
from inbox.cases.status import CaseStatus, ReplyEffect, ReplyOutcome, on_customer_reply
from inbox.cases.transitions import move_status
from inbox.errors import Conflict

__all__ = ["CustomerMessage", "agent_replied", "customer_wrote"]


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    outcome: ReplyOutcome
    change: Change  # of the case written into (only what was due, for NEW_LINKED)

    @property
    def new_linked_to(self) -> int | None:
        """The case a new conversation must be linked to, when the message starts one."""
        return self.change.case.id if self.outcome.effect is ReplyEffect.NEW_LINKED else None


def customer_wrote(case: Case, at: datetime, policies: CasePolicies) -> CustomerMessage:
    first = tick(case, at, policies)
    current = first.case
    policy = policies.for_inbox(current.inbox)
    outcome = on_customer_reply(
        current.status, solved_at=current.solved_at, now=at, reopen_window=policy.reopen_window
    )
    if not outcome.joins:
        return CustomerMessage(outcome, first)
    draft = Draft(first, SYSTEM, at)
    move_status(draft, outcome.status, policy, "the customer wrote")
    after = draft.case
    draft.quiet(
        sla=after.sla.customer_wrote(
            at, policy.targets_for(after.priority), running=not policy.pauses(after.status)
        )
    )
    return CustomerMessage(outcome, draft.done())


def agent_replied(
    case: Case,
    agent_id: int,
    *,
    at: datetime,
    policies: CasePolicies,
    over_holder: bool = False,
) -> Change:
    first = tick(case, at, policies)
    current = first.case
    if current.status is CaseStatus.CLOSED:
        raise Conflict(
            "this conversation is closed; a new message from the customer opens another",
            field="status",
        )
    draft = Draft(first, Actor.agent(agent_id), at)
    others = current.assignee_id not in (None, agent_id)
    if current.status in HOLDABLE and not (others and over_holder):
        take(draft, agent_id, "replied")
    policy = policies.for_inbox(current.inbox)
    draft.quiet(sla=draft.case.sla.agent_replied(at, policy.calendar))
    return draft.done()
