"""Who holds a case (pure): assign (an offer, or a direct assignment), accept, claim,
unassign, and transfer to an inbox, a team or an agent.

An assignment starts as an offer (`accepted_at` is None) unless it is accepted at once
(a supervisor's assignment, a claim). Accepting, or the agent's first reply, makes it
theirs; the router takes back only offers. A claim takes a case nobody holds, or accepts
one offered to the claimant; a case another agent holds cannot be claimed, and the
refusal says who holds it.

These functions state the rules; the race between two agents accepting or claiming at
once is settled by the store's conditional update on the case's version (the loser's
update changes no row; it reads the case again and gets the refusal from here).
"""

from __future__ import annotations

from datetime import datetime

from inbox.cases.activity import Actor, ChangeKind
from inbox.cases.case import Case, Change, Draft
from inbox.cases.due import tick
from inbox.cases.policy import CasePolicies
from inbox.cases.status import CaseStatus
from inbox.cases.transitions import release
from inbox.errors import Conflict, ValidationError

__all__ = ["HOLDABLE", "accept", "assign", "claim", "take", "transfer", "unassign"]

# statuses in which an agent may hold a case (snoozed ones are released until they wake)
HOLDABLE = frozenset({CaseStatus.OPEN, CaseStatus.PENDING, CaseStatus.ON_HOLD})


def _holdable(case: Case) -> None:
    if case.status not in HOLDABLE:
        raise Conflict(f"a {case.status} conversation is held by nobody", field="status")


def take(draft: Draft, agent_id: int, reason: str) -> None:
    """`agent_id` holds the case, accepted (claim, accept, an agent's reply). Raises
    `Conflict` naming the holder when another agent holds it."""
    case = draft.case
    if case.assignee_id is not None and case.assignee_id != agent_id:
        raise Conflict(f"agent {case.assignee_id} already has this conversation", field="agent_id")
    _holdable(case)
    if case.assignee_id == agent_id:
        if case.accepted_at is None:
            draft.note(ChangeKind.ASSIGNEE, agent_id, agent_id, reason)
            draft.quiet(accepted_at=draft.at)
        return
    draft.set("assignee_id", agent_id, reason)
    draft.quiet(accepted_at=draft.at)


def assign(
    case: Case,
    agent_id: int,
    *,
    actor: Actor,
    at: datetime,
    policies: CasePolicies,
    reason: str,
    accepted: bool = False,
) -> Change:
    """Give the case to `agent_id` (from whoever held it): an offer unless `accepted`."""
    first = tick(case, at, policies)
    _holdable(first.case)
    if first.case.assignee_id == agent_id:
        raise Conflict(f"agent {agent_id} already has this conversation", field="agent_id")
    draft = Draft(first, actor, at)
    draft.set("assignee_id", agent_id, reason)
    draft.quiet(accepted_at=at if accepted else None)
    return draft.done()


def accept(case: Case, agent_id: int, *, at: datetime, policies: CasePolicies) -> Change:
    """The agent an offer went to accepts it (again: nothing changes)."""
    first = tick(case, at, policies)
    if first.case.assignee_id != agent_id:
        raise Conflict("this conversation is not offered to you (any more)", field="agent_id")
    draft = Draft(first, Actor.agent(agent_id), at)
    take(draft, agent_id, "accepted")
    return draft.done()


def claim(
    case: Case, agent_id: int, *, at: datetime, policies: CasePolicies, reason: str = "claimed"
) -> Change:
    """The agent takes a case nobody holds ("take next", a reply), or accepts its offer."""
    first = tick(case, at, policies)
    draft = Draft(first, Actor.agent(agent_id), at)
    take(draft, agent_id, reason)
    return draft.done()


def unassign(
    case: Case, *, actor: Actor, at: datetime, policies: CasePolicies, reason: str
) -> Change:
    """Nobody holds the case (an offer timed out, its agent went offline, a supervisor)."""
    first = tick(case, at, policies)
    if first.case.assignee_id is None:
        raise Conflict("nobody has this conversation", field="agent_id")
    draft = Draft(first, actor, at)
    release(draft, reason)
    return draft.done()


def transfer(
    case: Case,
    *,
    actor: Actor,
    at: datetime,
    policies: CasePolicies,
    inbox: str | None = None,
    team: str | None = None,
    agent_id: int | None = None,
    reason: str | None = None,
) -> Change:
    """Move the case to another inbox and/or team (it waits there for an agent of it), or
    to an agent (an offer). A new inbox brings its SLA targets and hours; what the
    clocks counted so far stays counted."""
    if inbox is None and team is None and agent_id is None:
        raise ValidationError("transfer to an inbox, a team or an agent")
    first = tick(case, at, policies)
    current = first.case
    _holdable(current)
    draft = Draft(first, actor, at)
    if inbox is not None and inbox != current.inbox:
        old, new = policies.for_inbox(current.inbox), policies.for_inbox(inbox)
        draft.set("inbox", inbox, reason)
        draft.quiet(
            sla=current.sla.retargeted(
                new.targets_for(current.priority), at, old.calendar, new.warn_at
            )
        )
    if team is not None:
        draft.set("team", team, reason)
    if agent_id is not None:
        draft.set("assignee_id", agent_id, reason or "transfer")
        draft.quiet(accepted_at=None)
    elif current.assignee_id is not None:
        release(draft, reason or "transfer")
    if not draft.entries[len(first.entries) :]:
        raise Conflict("the conversation is already there", field="inbox")
    return draft.done()
