"""Case statuses, the one table of allowed moves between them, and what a customer's new
message does in each (pure).

    open      an agent is (or will be) working on it
    pending   waiting on the customer; their reply makes it open again
    on_hold   waiting on a third party; a customer reply makes it open again
    snoozed   set aside until a time; back to open (and the queue) then, or at a reply
    solved    done; a customer reply within the inbox's reopen window reopens it, a later
              one starts a new conversation linked to this one
    closed    solved and locked: never reopens; a customer reply starts a new linked one

`solved` is stored today as "resolved" (`inbox.types.ConversationStatus.RESOLVED`); the
migration of issue 17 renames it (see the design note).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from inbox.errors import Conflict, ValidationError

__all__ = [
    "TRANSITIONS",
    "CaseStatus",
    "ReplyEffect",
    "ReplyOutcome",
    "auto_close_at",
    "check_snooze",
    "check_transition",
    "on_customer_reply",
]


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SNOOZED = "snoozed"
    SOLVED = "solved"
    CLOSED = "closed"


S = CaseStatus
_WORKING = frozenset({S.OPEN, S.PENDING, S.ON_HOLD, S.SNOOZED})

# Every status change an agent, rule, API token or the system may make, and no other.
# (A customer's message moves a case by `on_customer_reply`, not by this table.)
TRANSITIONS: Mapping[CaseStatus, frozenset[CaseStatus]] = {
    S.OPEN: frozenset({S.PENDING, S.ON_HOLD, S.SNOOZED, S.SOLVED}),
    S.PENDING: frozenset({S.OPEN, S.ON_HOLD, S.SNOOZED, S.SOLVED}),
    S.ON_HOLD: frozenset({S.OPEN, S.PENDING, S.SNOOZED, S.SOLVED}),
    S.SNOOZED: frozenset({S.OPEN, S.PENDING, S.ON_HOLD, S.SOLVED}),
    S.SOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}

# the longest snooze accepted: a date further out is a typing mistake more often than not
MAX_SNOOZE = timedelta(days=366)


def check_transition(current: CaseStatus, target: CaseStatus) -> None:
    """Raise `Conflict` (409, with the way forward) unless `current -> target` is allowed."""
    if target in TRANSITIONS[current]:
        return
    if current is target:
        raise Conflict(f"the conversation is already {target}", field="status")
    if current is S.CLOSED:
        raise Conflict(
            "a closed conversation never changes; a new message from the customer starts"
            " a new conversation linked to it",
            field="status",
        )
    allowed = ", ".join(sorted(TRANSITIONS[current]))
    raise Conflict(f"a {current} conversation can become {allowed}; not {target}", field="status")


def check_snooze(until: datetime, now: datetime) -> None:
    """A snooze ends in the future, and within `MAX_SNOOZE`."""
    if until.tzinfo is None:
        raise ValidationError(
            "'until' needs a time zone (e.g. 2027-01-04T09:00:00Z)", field="until"
        )
    if until <= now:
        raise ValidationError("'until' must be in the future", field="until")
    if until - now > MAX_SNOOZE:
        raise ValidationError(f"'until' is more than {MAX_SNOOZE.days} days ahead", field="until")


class ReplyEffect(enum.StrEnum):
    STAYS = "stays"  # the message joins it and its status stays
    REOPENS = "reopens"  # the message joins it and it becomes open
    NEW_LINKED = "new_linked"  # the message starts a new conversation linked to it


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    effect: ReplyEffect
    status: CaseStatus  # the case's status after the message (its own, for NEW_LINKED)

    @property
    def joins(self) -> bool:
        return self.effect is not ReplyEffect.NEW_LINKED


def on_customer_reply(
    status: CaseStatus,
    *,
    solved_at: datetime | None,
    now: datetime,
    reopen_window: timedelta,
) -> ReplyOutcome:
    """What a customer's new message does to the case it threads into.

    Open stays open; pending, on hold and snoozed become open (someone has to look); a
    solved case reopens if it was solved at most `reopen_window` ago, else the message
    starts a new conversation linked to it; a closed case always does the latter.
    A solved case whose solve time is unknown counts as solved long ago."""
    if status is S.OPEN:
        return ReplyOutcome(ReplyEffect.STAYS, status)
    if status in _WORKING:
        return ReplyOutcome(ReplyEffect.REOPENS, S.OPEN)
    if status is S.SOLVED and solved_at is not None and now - solved_at <= reopen_window:
        return ReplyOutcome(ReplyEffect.REOPENS, S.OPEN)
    return ReplyOutcome(ReplyEffect.NEW_LINKED, status)


def auto_close_at(
    status: CaseStatus, solved_at: datetime | None, after: timedelta | None
) -> datetime | None:
    """When a solved case closes by itself (None: it does not, or is not solved)."""
    if status is not S.SOLVED or solved_at is None or after is None:
        return None
    return solved_at + after
