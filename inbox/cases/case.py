"""A case: the lifecycle fields of one conversation, and a change to them with its
activity entries (pure).

Every operation of this package (`lifecycle`, `ownership`, `messages`, `due`) takes a
`Case`, returns a `Change` (the case after, the activity entries that tell what changed,
and the SLA warnings and breaches noted on the way), and does nothing else. A caller
writes the change in one transaction, conditional on the version it read
(`UPDATE ... SET version = version + 1 WHERE id = :id AND version = :version`), appends
the entries to the activity log in that transaction, and publishes events after commit.
A caller that loses the race reads the case again and retries or reports why it cannot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inbox.cases.activity import ActivityEntry, Actor, ChangeKind, Value
from inbox.cases.policy import CasePolicies
from inbox.cases.sla import CaseSla, SlaEvent
from inbox.cases.status import CaseStatus

__all__ = ["Case", "Change", "Draft", "open_case"]


@dataclass(frozen=True, slots=True)
class Case:
    id: int
    inbox: str
    status: CaseStatus
    priority: str
    assignee_id: int | None = None
    accepted_at: datetime | None = None  # assigned but not accepted: an offer
    team: str | None = None
    solved_at: datetime | None = None
    snoozed_until: datetime | None = None
    escalated: bool = False
    linked_to: int | None = None  # the solved or closed conversation this one follows
    sla: CaseSla = field(default_factory=CaseSla)
    version: int = 0  # as read; the store's conditional update moves it on

    @property
    def offered(self) -> bool:
        """Assigned and not accepted yet."""
        return self.assignee_id is not None and self.accepted_at is None

    @property
    def waiting(self) -> bool:
        """Open and held by nobody: it waits for an agent (the store queues it)."""
        return self.status is CaseStatus.OPEN and self.assignee_id is None


@dataclass(frozen=True, slots=True)
class Change:
    before: Case
    case: Case
    entries: tuple[ActivityEntry, ...] = ()
    sla_events: tuple[SlaEvent, ...] = ()

    @property
    def changed(self) -> bool:
        return self.case != self.before


def open_case(
    case_id: int,
    inbox: str,
    priority: str,
    at: datetime,
    policies: CasePolicies,
    *,
    linked_to: int | None = None,
) -> Case:
    """A new conversation: open, waiting, its first-response and resolution clocks on."""
    targets = policies.for_inbox(inbox).targets_for(priority)
    return Case(
        id=case_id,
        inbox=inbox,
        status=CaseStatus.OPEN,
        priority=priority,
        linked_to=linked_to,
        sla=CaseSla.opened(at, targets),
    )


def _value(value: Any) -> Value:
    if isinstance(value, CaseStatus):
        return value.value
    if value is None or isinstance(value, str | int | bool | tuple):
        return value
    raise TypeError(f"not an activity value: {value!r}")


# a logged field of Case -> the kind of its activity entries
_LOGGED = {
    "status": ChangeKind.STATUS,
    "priority": ChangeKind.PRIORITY,
    "assignee_id": ChangeKind.ASSIGNEE,
    "inbox": ChangeKind.INBOX,
    "team": ChangeKind.TEAM,
    "escalated": ChangeKind.ESCALATION,
}


class Draft:
    """A change being built: each logged field set to a new value adds its entry."""

    def __init__(self, start: Change | Case, actor: Actor, at: datetime) -> None:
        if isinstance(start, Case):
            start = Change(start, start)
        self.before = start.before
        self.case = start.case
        self.entries = list(start.entries)
        self.events = list(start.sla_events)
        self.actor = actor
        self.at = at

    def set(self, name: str, value: Any, reason: str | None = None) -> None:
        """Set a logged field; an entry only when the value differs."""
        old = getattr(self.case, name)
        if old == value:
            return
        self.entries.append(
            ActivityEntry(
                self.case.id, self.actor, self.at, _LOGGED[name], _value(old), _value(value), reason
            )
        )
        self.case = dataclasses.replace(self.case, **{name: value})

    def note(self, kind: ChangeKind, before: Value, after: Value, reason: str | None) -> None:
        """An entry for what is not a field of its own (accepting, SLA states)."""
        self.entries.append(
            ActivityEntry(self.case.id, self.actor, self.at, kind, before, after, reason)
        )

    def quiet(self, **fields: Any) -> None:
        """Fields that follow from a logged change (solve time, snooze end, clocks)."""
        self.case = dataclasses.replace(self.case, **fields)

    def done(self) -> Change:
        return Change(self.before, self.case, tuple(self.entries), tuple(self.events))
