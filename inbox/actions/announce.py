"""The bus events a committed case change announces (pure: `events_for`), and their
publication after the commit (`announce`).

    what changed                     events
    status                           conversation.status_changed; and conversation.resolved
                                     when solved (the router lets the conversation go),
                                     conversation.reopened when a solved one opens again
    assignee                         conversation.assigned (with previous_agent_id when it
                                     moved from an agent), or conversation.unassigned
    priority                         conversation.priority_changed
    escalated                        conversation.escalated (true or false)
    an SLA clock warned / breached   sla.warning / sla.breached (metric, when it was due)
    it came to wait for an agent     conversation.queued (the router reads the row)
    inbox, team, acceptance, snooze  conversation.updated (listeners re-read)
    any entry in the log             activity.appended (the entries' kinds)

Statuses are named as the API shows them (`inbox.store.cases.stored_status`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from inbox import events as ev
from inbox.bus.backends import EventBus
from inbox.cases import ActivityEntry, ActorKind, CaseStatus, Change, ChangeKind, SlaState
from inbox.errors import BusError
from inbox.events import Event, EventName
from inbox.store.cases import stored_status

__all__ = ["announce", "events_for"]

log = logging.getLogger("omnidesk.actions")

_UPDATED_BY = ("inbox", "team", "accepted_at", "snoozed_until", "linked_to")


class _Events:
    def __init__(self, change: Change, at: datetime) -> None:
        self.change, self.at = change, at
        self.cid = change.case.id
        self.out: list[Event] = []

    def add(self, name: EventName, data: Mapping[str, Any], why: ChangeKind | None = None) -> None:
        """An event of `data`, with the reason of the entry of kind `why` if given."""
        if why is not None:
            data = {**data, "reason": self.reason(why)}
        self.out.append(Event(name, data, self.at))

    def last(self, kind: ChangeKind) -> ActivityEntry | None:
        """The last entry of `kind`: the one that set the final value."""
        return next((e for e in reversed(self.change.entries) if e.kind is kind), None)

    def reason(self, kind: ChangeKind) -> str | None:
        entry = self.last(kind)
        return None if entry is None else entry.reason


def events_for(change: Change, at: datetime) -> list[Event]:
    """The events of `change`, made at `at` (nothing changed: none)."""
    out = _Events(change, at)
    before, case = change.before, change.case
    _status(out)
    _assignee(out)
    if case.priority != before.priority:
        priority = ev.PriorityChanged(
            conversation_id=out.cid, priority=case.priority, previous_priority=before.priority
        )
        out.add(EventName.CONVERSATION_PRIORITY_CHANGED, priority, ChangeKind.PRIORITY)
    if case.escalated != before.escalated:
        escalated = ev.Escalated(conversation_id=out.cid, escalated=case.escalated)
        out.add(EventName.CONVERSATION_ESCALATED, escalated, ChangeKind.ESCALATION)
    _sla(out)
    if case.waiting and not before.waiting:
        queued = ev.Queued(conversation_id=out.cid, priority=case.priority)
        reason = out.reason(ChangeKind.STATUS) or out.reason(ChangeKind.ASSIGNEE)
        if reason:
            queued["reason"] = reason
        out.add(EventName.CONVERSATION_QUEUED, queued)
    if any(getattr(case, name) != getattr(before, name) for name in _UPDATED_BY):
        out.add(EventName.CONVERSATION_UPDATED, ev.Updated(conversation_id=out.cid))
    if change.entries:
        kinds = [entry.kind.value for entry in change.entries]
        out.add(
            EventName.ACTIVITY_APPENDED, ev.ActivityAppended(conversation_id=out.cid, kinds=kinds)
        )
    return out.out


async def announce(bus: EventBus, events: list[Event]) -> None:
    """Publish what was committed. With the bus away the events are lost to it, and the
    database covers them: listeners catch up from the store when the bus resumes."""
    if not events:
        return
    try:
        await bus.publish_many(events)
    except BusError as exc:
        log.warning("case change committed, not announced (%s)", exc.message)


def _status(out: _Events) -> None:
    before, case = out.change.before, out.change.case
    if case.status is before.status:
        return
    changed = ev.StatusChanged(
        conversation_id=out.cid,
        status=stored_status(case.status),
        previous_status=stored_status(before.status),
    )
    out.add(EventName.CONVERSATION_STATUS_CHANGED, changed, ChangeKind.STATUS)
    if case.status is CaseStatus.SOLVED:
        resolved = ev.Resolved(conversation_id=out.cid)
        by = out.last(ChangeKind.STATUS)
        if by is not None and by.actor.kind is ActorKind.AGENT and isinstance(by.actor.id, int):
            resolved["agent_id"] = by.actor.id
        out.add(EventName.CONVERSATION_RESOLVED, resolved)
    elif before.status is CaseStatus.SOLVED and case.status is CaseStatus.OPEN:
        out.add(EventName.CONVERSATION_REOPENED, ev.Arrived(conversation_id=out.cid))


def _assignee(out: _Events) -> None:
    before, case = out.change.before, out.change.case
    if case.assignee_id == before.assignee_id:
        return
    reason = out.reason(ChangeKind.ASSIGNEE) or "assigned"
    if case.assignee_id is not None:
        moved = ev.Assigned(conversation_id=out.cid, agent_id=case.assignee_id, reason=reason)
        if before.assignee_id is not None:
            moved["previous_agent_id"] = before.assignee_id
        out.add(EventName.CONVERSATION_ASSIGNED, moved)
    elif before.assignee_id is not None:
        gone = ev.Unassigned(conversation_id=out.cid, agent_id=before.assignee_id, reason=reason)
        out.add(EventName.CONVERSATION_UNASSIGNED, gone)


def _sla(out: _Events) -> None:
    before, case = out.change.before, out.change.case
    for event in out.change.sla_events:
        metric, when = event.metric.value, event.at.isoformat()
        if event.state is SlaState.WARNING:
            out.add(
                EventName.SLA_WARNING,
                ev.SlaWarning(conversation_id=out.cid, metric=metric, at=when),
            )
        elif event.state is SlaState.BREACHED:
            breach = ev.SlaBreached(
                conversation_id=out.cid,
                metric=metric,
                at=when,
                previous_priority=before.priority,
                priority=case.priority,
            )
            out.add(EventName.SLA_BREACHED, breach)
