"""What the router decides, as plain data.

The service persists each `Assigned` before it announces it, then publishes `event()`.
Times are epoch seconds (floats), as the pure core uses them.

Decisions are immutable records. They are NamedTuples rather than frozen dataclasses
because the core builds one per decision, and a frozen dataclass's `__init__` (one
`object.__setattr__` per field) costs about twice as much.
On its hot paths the core builds them with `build(Assigned, (every field))`, which is
`tuple.__new__` itself: the same object without the generated `__new__`'s Python frame.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from inbox import events as ev
from inbox.events import Event, EventName
from inbox.types import Assignment

TAKE_NEXT = "take_next"  # an `Assigned` reason: the agent pulled it, accepted at once

build = tuple.__new__  # build(Assigned, (conversation_id, agent_id, ...)): all fields, in order


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


class Assigned(NamedTuple):
    conversation_id: int
    agent_id: int
    at: float
    reason: str  # "routed", "transfer", "supervisor", "restored", TAKE_NEXT
    previous_agent_id: int | None = None
    forced: bool = False  # a supervisor put it over the agent's capacity

    def assignment(self) -> Assignment:
        return Assignment(self.conversation_id, self.agent_id, _dt(self.at), self.reason)

    def event(self) -> Event:
        data = ev.Assigned(
            conversation_id=self.conversation_id, agent_id=self.agent_id, reason=self.reason
        )
        if self.previous_agent_id is not None:
            data["previous_agent_id"] = self.previous_agent_id
        return Event(EventName.CONVERSATION_ASSIGNED, data, _dt(self.at))


class Unassigned(NamedTuple):
    conversation_id: int
    agent_id: int
    at: float
    reason: str  # "offline", "accept_timeout", "unassign", "transfer", "requeue", "removed"

    def event(self) -> Event:
        data = ev.Unassigned(
            conversation_id=self.conversation_id, agent_id=self.agent_id, reason=self.reason
        )
        return Event(EventName.CONVERSATION_UNASSIGNED, data, _dt(self.at))


class Requeued(NamedTuple):
    """A conversation went back to the queue (ahead of fresh ones of its priority)."""

    conversation_id: int
    at: float
    priority: str
    skills: tuple[str, ...]
    reason: str

    def event(self) -> Event:
        data = ev.Queued(
            conversation_id=self.conversation_id,
            priority=self.priority,
            skills=list(self.skills),
            reason=self.reason,
        )
        return Event(EventName.CONVERSATION_QUEUED, data, _dt(self.at))


class SlaBreached(NamedTuple):
    conversation_id: int
    at: float
    previous_priority: str
    priority: str  # one level up, or the same at the top level
    waited_seconds: float
    target_seconds: float

    def event(self) -> Event:
        data = ev.SlaBreached(
            conversation_id=self.conversation_id,
            previous_priority=self.previous_priority,
            priority=self.priority,
            waited_seconds=round(self.waited_seconds, 3),
            target_seconds=self.target_seconds,
        )
        return Event(EventName.SLA_BREACHED, data, _dt(self.at))


class Relaxed(NamedTuple):
    """A waiting conversation now requires fewer skills."""

    conversation_id: int
    at: float
    skills: tuple[str, ...]

    def event(self) -> Event:
        data = ev.Updated(conversation_id=self.conversation_id, required_skills=list(self.skills))
        return Event(EventName.CONVERSATION_UPDATED, data, _dt(self.at))


Decision = Assigned | Unassigned | Requeued | SlaBreached | Relaxed
