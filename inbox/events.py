"""Named events that fan out to listeners (sockets, auto-reply, router, reporting).

An event is a name plus a small JSON-able payload of ids and facts, never a provider
payload. Listeners that need more read it from the store (the source of truth).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


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
    AGENT_PRESENCE = "agent.presence"
    SLA_BREACHED = "sla.breached"
    AUTOREPLY_DECIDED = "autoreply.decided"
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105 - an event name, not a secret
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
