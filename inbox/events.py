"""Named events that fan out to listeners (sockets, auto-reply, router, reporting).

An event is a name plus a small JSON-able payload of ids and facts, never a provider
payload. Listeners that need more read it from the store (the source of truth).

This module is the whole vocabulary of the bus: every name is an `EventName` member and
every payload has a `TypedDict` below (`PAYLOADS` maps one to the other), so "find
references" on either finds every producer and consumer. A payload is a plain dict on the
wire; its keys keep the order producers write them in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Required, TypedDict


class EventName(enum.StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERY_CHANGED = "message.delivery_changed"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_REOPENED = "conversation.reopened"
    CONVERSATION_QUEUED = "conversation.queued"
    CONVERSATION_ASSIGNED = "conversation.assigned"
    CONVERSATION_UNASSIGNED = "conversation.unassigned"
    CONVERSATION_RESOLVED = "conversation.resolved"
    CONVERSATION_UPDATED = "conversation.updated"
    # case changes made through inbox.actions (issue 17), each after its commit
    CONVERSATION_STATUS_CHANGED = "conversation.status_changed"
    CONVERSATION_PRIORITY_CHANGED = "conversation.priority_changed"
    CONVERSATION_ESCALATED = "conversation.escalated"  # onto or off the supervisors' list
    ACTIVITY_APPENDED = "activity.appended"  # entries were added to a conversation's log
    SLA_WARNING = "sla.warning"
    AGENT_PRESENCE = "agent.presence"
    SLA_BREACHED = "sla.breached"
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105 - an event name, not a secret
    AGENT_TYPING = "agent.typing"  # an agent types in a chat: shown to the visitor
    VISITOR_TYPING = "visitor.typing"  # a chat visitor types: shown to the agents viewing
    AGENT_CONNECTION = "agent.connection"  # an agent socket came or went (for the router)
    ROUTING_COMMAND = "routing.command"  # a web process asks the active router
    ROUTING_REPLY = "routing.reply"  # the active router answers (same request_id)
    # local to one process, never published: its bus listens again after losing its
    # backend; what was published meanwhile is lost, so listeners catch up from the store
    BUS_RESUMED = "bus.resumed"


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "data": dict(self.data), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Event:
        return cls(
            name=str(raw["name"]),
            data=dict(raw.get("data") or {}),
            at=datetime.fromisoformat(str(raw["at"])),
        )


# -- payloads (one per event; `total=False` keys are present only when known) -----------


class Arrived(TypedDict, total=False):
    """message.received, conversation.created and conversation.reopened; ingest writes
    every key, an agent reopening a conversation only `conversation_id`."""

    message_id: int
    conversation_id: Required[int]
    contact_id: int
    channel: str
    inbox: str


class MessageSent(TypedDict, total=False):
    """An outbound message was queued (by an agent, or as an auto-reply)."""

    conversation_id: Required[int]
    message_id: Required[int]
    auto_reply: bool


class DeliveryChanged(TypedDict, total=False):
    """A message's delivery status moved (`inbox.types.DeliveryStatus` value)."""

    message_id: Required[int]
    conversation_id: Required[int]
    status: Required[str]
    reason: str | None


class Queued(TypedDict, total=False):
    """A conversation waits for an agent (again)."""

    conversation_id: Required[int]
    message_id: int
    priority: str
    channel: str | None
    skills: list[str]
    reason: str
    source: str  # "router" when the router published it
    inbox: str  # where it waits now, when a transfer moved it
    team: str | None


class Assigned(TypedDict, total=False):
    conversation_id: Required[int]
    agent_id: Required[int]
    reason: Required[str]
    previous_agent_id: int
    source: str


class Unassigned(TypedDict, total=False):
    conversation_id: Required[int]
    agent_id: Required[int]
    reason: Required[str]
    source: str


class Resolved(TypedDict, total=False):
    conversation_id: Required[int]
    message_id: int
    agent_id: int  # the agent who resolved it
    by: str  # "api" when the REST API resolved it


class Updated(TypedDict, total=False):
    """Something about a conversation changed; listeners re-read it."""

    conversation_id: Required[int]
    message_id: int  # a note was added
    required_skills: list[str]
    source: str


class PresenceChanged(TypedDict, total=False):
    """An agent's presence changed; without `presence`, listeners read it."""

    agent_id: Required[int]
    presence: str
    reason: str
    source: str


class SlaBreached(TypedDict, total=False):
    """The router's wait target passed (priorities and seconds), or a case's SLA clock
    (`metric` and when it was due, `at`: inbox.cases)."""

    conversation_id: Required[int]
    previous_priority: str
    priority: str
    waited_seconds: float
    target_seconds: float
    metric: str  # an `inbox.cases.SlaMetric` value
    at: str  # ISO 8601
    source: str


class SlaWarning(TypedDict):
    """A case's SLA clock passed the warning fraction of its target (at `at`, ISO 8601)."""

    conversation_id: int
    metric: str
    at: str


class StatusChanged(TypedDict, total=False):
    """The status as the API shows it, and the one before."""

    conversation_id: Required[int]
    status: Required[str]
    previous_status: Required[str]
    reason: str | None


class PriorityChanged(TypedDict, total=False):
    conversation_id: Required[int]
    priority: Required[str]
    previous_priority: Required[str]
    reason: str | None


class Escalated(TypedDict, total=False):
    """`escalated` true: listed for supervisors (a breach, or an agent asking for help);
    false: taken off the list."""

    conversation_id: Required[int]
    escalated: Required[bool]
    reason: str | None


class ActivityAppended(TypedDict):
    """The kinds of the entries one change added to the log (`inbox.cases.ChangeKind`
    values, in order); listeners read the entries from the store."""

    conversation_id: int
    kinds: list[str]


class TokenRevoked(TypedDict):
    token_id: int
    name: str


class AgentTyping(TypedDict):
    conversation_id: int
    typing: bool
    name: str


class VisitorTyping(TypedDict):
    conversation_id: int
    visitor_id: str
    typing: bool


class AgentConnection(TypedDict):
    agent_id: int
    connected: bool


class RoutingCommand(TypedDict, total=False):
    """`op` is one of `routing.commands.OPS`; the other keys are the op's arguments."""

    op: Required[str]
    request_id: Required[str]
    conversation_id: Required[int]
    agent_id: int
    force: bool
    skills: list[str]


class RoutingReply(TypedDict, total=False):
    request_id: Required[str]
    ok: Required[bool]
    status: int
    code: str
    message: str
    field: str | None
    conversation_id: int  # the conversation a command chose (take_next)


class Empty(TypedDict):
    """bus.resumed carries nothing."""


PAYLOADS: Mapping[EventName, type] = {
    EventName.MESSAGE_RECEIVED: Arrived,
    EventName.MESSAGE_SENT: MessageSent,
    EventName.MESSAGE_DELIVERY_CHANGED: DeliveryChanged,
    EventName.CONVERSATION_CREATED: Arrived,
    EventName.CONVERSATION_REOPENED: Arrived,
    EventName.CONVERSATION_QUEUED: Queued,
    EventName.CONVERSATION_ASSIGNED: Assigned,
    EventName.CONVERSATION_UNASSIGNED: Unassigned,
    EventName.CONVERSATION_RESOLVED: Resolved,
    EventName.CONVERSATION_UPDATED: Updated,
    EventName.CONVERSATION_STATUS_CHANGED: StatusChanged,
    EventName.CONVERSATION_PRIORITY_CHANGED: PriorityChanged,
    EventName.CONVERSATION_ESCALATED: Escalated,
    EventName.ACTIVITY_APPENDED: ActivityAppended,
    EventName.SLA_WARNING: SlaWarning,
    EventName.AGENT_PRESENCE: PresenceChanged,
    EventName.SLA_BREACHED: SlaBreached,
    EventName.API_TOKEN_REVOKED: TokenRevoked,
    EventName.AGENT_TYPING: AgentTyping,
    EventName.VISITOR_TYPING: VisitorTyping,
    EventName.AGENT_CONNECTION: AgentConnection,
    EventName.ROUTING_COMMAND: RoutingCommand,
    EventName.ROUTING_REPLY: RoutingReply,
    EventName.BUS_RESUMED: Empty,
}
