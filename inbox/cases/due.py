"""Time-driven changes of a case (pure): SLA warnings and breaches, the end of a snooze,
auto-close; and when the next of them is due.

`tick(case, now)` applies everything due by `now`, as the system; `next_wake(case)` says
when to call it next. A store keeps `next_wake` in an indexed column, and a sweeper
applies `tick` to the rows whose time has come (see the design note of issue 17: each
row is claimed by a conditional update, so in a cluster one process fires it, once).
Every other operation of this package runs `tick` first, so what was due before an
agent's action is on record before it, whether or not a sweeper has run.

At a breach the case is escalated: its priority goes one level up (once per tick, however
many clocks breached together) and it is marked escalated. The clocks keep their
targets: the breached one stays breached, and the others are not shortened behind the
agent's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inbox.cases.activity import SYSTEM, ActivityEntry, ChangeKind
from inbox.cases.case import Case, Change, Draft
from inbox.cases.policy import CasePolicies
from inbox.cases.sla import SlaEvent, SlaMetric, SlaState
from inbox.cases.status import CaseStatus, auto_close_at
from inbox.cases.transitions import move_status

__all__ = ["Summary", "next_wake", "summary", "tick"]


def tick(case: Case, now: datetime, policies: CasePolicies) -> Change:
    policy = policies.for_inbox(case.inbox)
    draft = Draft(case, SYSTEM, now)
    sla, events = case.sla.tick(now, policy.calendar, policy.warn_at)
    if events:
        draft.entries += _sla_entries(case, events)
        draft.events += events
        draft.quiet(sla=sla)
        breached = [e.metric for e in events if e.state is SlaState.BREACHED]
        if breached:
            reason = "sla breach: " + ", ".join(dict.fromkeys(breached))
            draft.set("priority", policies.priorities.raised(case.priority), reason)
            draft.set("escalated", True, reason)
    if case.status is CaseStatus.SNOOZED and _passed(case.snoozed_until, now):
        move_status(draft, CaseStatus.OPEN, policy, "snooze ended")
    if _passed(auto_close_at(case.status, case.solved_at, policy.auto_close_after), now):
        move_status(draft, CaseStatus.CLOSED, policy, "closed automatically after solved")
    return draft.done()


def next_wake(case: Case, policies: CasePolicies) -> datetime | None:
    """When `tick` next changes something, if nothing else happens first."""
    policy = policies.for_inbox(case.inbox)
    times = [
        case.snoozed_until if case.status is CaseStatus.SNOOZED else None,
        auto_close_at(case.status, case.solved_at, policy.auto_close_after),
        case.sla.next_check(policy.calendar, policy.warn_at),
    ]
    return min((t for t in times if t is not None), default=None)


# the state a case shows for its SLA: its worst clock's (no clock: None)
_WORST_FIRST = (
    SlaState.BREACHED,
    SlaState.WARNING,
    SlaState.RUNNING,
    SlaState.PAUSED,
    SlaState.MET,
)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a store keeps beside a case, derived from it: when to `tick` it next (the
    sweeper's index), its earliest due time (the queue shows it and sorts by it), and the
    state of its worst SLA clock (the queue's badge, the supervisors' filter)."""

    wake_at: datetime | None
    due_at: datetime | None
    sla_state: SlaState | None


def summary(case: Case, now: datetime, policies: CasePolicies) -> Summary:
    policy = policies.for_inbox(case.inbox)
    states = {c.state(now, policy.calendar, policy.warn_at) for c in case.sla}
    return Summary(
        wake_at=next_wake(case, policies),
        due_at=case.sla.due_at(policy.calendar),
        sla_state=next((s for s in _WORST_FIRST if s in states), None),
    )


def _passed(when: datetime | None, now: datetime) -> bool:
    return when is not None and when <= now


def _sla_entries(case: Case, events: list[SlaEvent]) -> list[ActivityEntry]:
    """One entry per event, at the time it happened, from the state it left."""
    warned: set[SlaMetric] = {c.metric for c in case.sla if c.warned}
    entries = []
    for event in events:
        clock = case.sla.clock(event.metric)
        before = SlaState.RUNNING if clock is None or clock.running else SlaState.PAUSED
        if event.metric in warned:
            before = SlaState.WARNING
        warned.add(event.metric)
        entries.append(
            ActivityEntry(
                case.id, SYSTEM, event.at, ChangeKind.SLA, before.value, event.state.value,
                event.metric.value,
            )
        )  # fmt: skip
    return entries
