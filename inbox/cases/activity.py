"""The activity log's entry: who changed what about a conversation, when, from what to
what, and why (pure).

The log is append-only and outlives messages; reporting reads it. One entry per change:

    kind        before / after                      reason
    assignee    agent id or None                    "routed", "accepted", "claimed", ...
    status      a CaseStatus value                  free text (a snooze names its end)
    priority    a priority level                    the agent's reason, "sla breach: ..."
    inbox       an inbox name                       free text
    team        a team name or None                 free text
    tags        the sorted tags                     free text
    sla         an SlaState value                   the metric ("first_response", ...)
    merge       a contact id (source -> target)     free text
    escalation  False / True                        the note, or "sla breach: <metric>"

Who: an agent, an auto-reply rule, the router, an API token, or the system (timers:
snooze ends, auto-close, SLA). Agents and API tokens are named by their numeric id, a
rule by its name; the router and the system by nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ROUTER", "SYSTEM", "ActivityEntry", "Actor", "ActorKind", "ChangeKind", "Value"]

Value = str | int | bool | tuple[str, ...] | None
MAX_REASON = 500


class ActorKind(enum.StrEnum):
    AGENT = "agent"
    RULE = "rule"
    ROUTER = "router"
    API_TOKEN = "api_token"  # noqa: S105 - a kind of actor, not a secret
    SYSTEM = "system"


class ChangeKind(enum.StrEnum):
    ASSIGNEE = "assignee"
    STATUS = "status"
    PRIORITY = "priority"
    INBOX = "inbox"
    TEAM = "team"
    TAGS = "tags"
    SLA = "sla"
    MERGE = "merge"
    ESCALATION = "escalation"


_NUMBERED = frozenset({ActorKind.AGENT, ActorKind.API_TOKEN})


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: int | str | None = None

    def __post_init__(self) -> None:
        if self.kind in _NUMBERED:
            ok = isinstance(self.id, int) and not isinstance(self.id, bool) and self.id > 0
        elif self.kind is ActorKind.RULE:
            ok = isinstance(self.id, str) and 0 < len(self.id) <= 200
        else:
            ok = self.id is None
        if not ok:
            raise ValueError(f"an actor of kind {self.kind} cannot have id {self.id!r}")

    @classmethod
    def agent(cls, agent_id: int) -> Actor:
        return cls(ActorKind.AGENT, agent_id)

    @classmethod
    def rule(cls, name: str) -> Actor:
        return cls(ActorKind.RULE, name)

    @classmethod
    def api_token(cls, token_id: int) -> Actor:
        return cls(ActorKind.API_TOKEN, token_id)

    def ref(self) -> str | None:
        """The id as stored beside the kind (a text column serves every kind)."""
        return None if self.id is None else str(self.id)

    @classmethod
    def from_ref(cls, kind: str, ref: str | None) -> Actor:
        actor_kind = ActorKind(kind)
        if actor_kind in _NUMBERED and ref is not None:
            return cls(actor_kind, int(ref))
        return cls(actor_kind, ref)


ROUTER = Actor(ActorKind.ROUTER)
SYSTEM = Actor(ActorKind.SYSTEM)


def _value(raw: Any) -> Value:
    if isinstance(raw, list | tuple):
        return tuple(str(v) for v in raw)
    if raw is None or isinstance(raw, str | int | bool):
        return raw
    raise ValueError(f"not an activity value: {raw!r}")


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    conversation_id: int
    actor: Actor
    at: datetime
    kind: ChangeKind
    before: Value
    after: Value
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("an activity entry's time must be aware")
        if self.reason is not None and len(self.reason) > MAX_REASON:
            object.__setattr__(self, "reason", self.reason[: MAX_REASON - 1] + "…")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, as a store row or an API answer carries them."""
        return {
            "conversation_id": self.conversation_id,
            "actor_kind": self.actor.kind.value,
            "actor_id": self.actor.ref(),
            "at": self.at.astimezone(UTC).isoformat(),
            "kind": self.kind.value,
            "before": list(self.before) if isinstance(self.before, tuple) else self.before,
            "after": list(self.after) if isinstance(self.after, tuple) else self.after,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActivityEntry:
        return cls(
            conversation_id=int(data["conversation_id"]),
            actor=Actor.from_ref(str(data["actor_kind"]), data.get("actor_id")),
            at=datetime.fromisoformat(str(data["at"])),
            kind=ChangeKind(data["kind"]),
            before=_value(data.get("before")),
            after=_value(data.get("after")),
            reason=data.get("reason"),
        )
