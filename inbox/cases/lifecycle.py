"""What an agent, a rule, an API token or the system asks of a case: status, priority,
escalation (pure). Each returns a `Change` or raises `Conflict` / `ValidationError` with
the reason, which the API answers as 409 / 422 and a bulk action reports per item.
"""

from __future__ import annotations

from datetime import datetime

from inbox.cases.activity import Actor, ActorKind
from inbox.cases.case import Case, Change, Draft
from inbox.cases.due import tick
from inbox.cases.policy import CasePolicies
from inbox.cases.status import CaseStatus, check_snooze, check_transition
from inbox.cases.transitions import move_status
from inbox.errors import Conflict, ValidationError

__all__ = ["deescalate", "escalate", "set_priority", "set_status"]


def _reason(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ValidationError(f"'{what}' must not be blank", field=what)
    return cleaned


def set_status(
    case: Case,
    to: CaseStatus,
    *,
    actor: Actor,
    at: datetime,
    policies: CasePolicies,
    reason: str | None = None,
    until: datetime | None = None,
) -> Change:
    """Move to `to` if the table allows it; `until` (required for snoozed, refused
    otherwise) is when a snoozed case comes back."""
    first = tick(case, at, policies)
    check_transition(first.case.status, to)
    if to is CaseStatus.SNOOZED:
        if until is None:
            raise ValidationError("snoozing needs 'until', the time it comes back", field="until")
        check_snooze(until, at)
    elif until is not None:
        raise ValidationError("'until' goes only with status snoozed", field="until")
    note = _reason(reason, "reason")
    if note is None and until is not None:
        note = f"until {until.isoformat()}"
    draft = Draft(first, actor, at)
    move_status(draft, to, policies.for_inbox(case.inbox), note, until=until)
    return draft.done()


def set_priority(
    case: Case,
    to: str,
    *,
    actor: Actor,
    at: datetime,
    policies: CasePolicies,
    reason: str | None = None,
) -> Change:
    """A new priority gives the SLA clocks that are still running the new level's
    targets. An agent must say why."""
    priority = policies.priorities.check(to)
    note = _reason(reason, "reason")
    if note is None and actor.kind is ActorKind.AGENT:
        raise ValidationError("say why the priority changes", field="reason")
    first = tick(case, at, policies)
    current = first.case
    if current.priority == priority:
        raise Conflict(f"the priority is already {priority}", field="priority")
    if current.status is CaseStatus.CLOSED:
        raise Conflict("a closed conversation never changes", field="priority")
    policy = policies.for_inbox(current.inbox)
    draft = Draft(first, actor, at)
    draft.set("priority", priority, note)
    draft.quiet(
        sla=current.sla.retargeted(
            policy.targets_for(priority), at, policy.calendar, policy.warn_at
        )
    )
    return draft.done()


def escalate(
    case: Case, *, actor: Actor, at: datetime, policies: CasePolicies, note: str
) -> Change:
    """ "Needs help": the case is listed for supervisors, with the note."""
    text = _reason(note, "note")
    first = tick(case, at, policies)
    if first.case.escalated:
        raise Conflict("this conversation is already escalated", field="escalated")
    if first.case.status is CaseStatus.CLOSED:
        raise Conflict("a closed conversation never changes", field="escalated")
    draft = Draft(first, actor, at)
    draft.set("escalated", True, text)
    return draft.done()


def deescalate(
    case: Case,
    *,
    actor: Actor,
    at: datetime,
    policies: CasePolicies,
    reason: str | None = None,
) -> Change:
    """A supervisor has dealt with the escalation."""
    first = tick(case, at, policies)
    if not first.case.escalated:
        raise Conflict("this conversation is not escalated", field="escalated")
    draft = Draft(first, actor, at)
    draft.set("escalated", False, _reason(reason, "reason"))
    return draft.done()
