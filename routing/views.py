"""Read-only snapshots of the router's state, for the API and for tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WaitingView:
    position: int  # 1 = next
    conversation_id: int
    priority: str
    channel: str
    enqueued_at: float
    waiting_since: float  # relaxation clock (restarts on requeue)
    skills: tuple[str, ...]  # hard requirement as enqueued
    optional_skills: tuple[str, ...]
    required_skills: tuple[str, ...]  # what an agent needs right now, after relaxation
    requeued: bool  # ahead of fresh conversations of its priority
    excluded_agents: tuple[int, ...]  # timed out on it; not offered again for a while


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation_id: int
    state: str  # "waiting" or "assigned"
    priority: str
    channel: str
    agent_id: int | None
    accepted: bool
    required_skills: tuple[str, ...]
    excluded_agents: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: int
    presence: str
    skills: Mapping[str, int]
    capacity: Mapping[str, int]
    load: Mapping[str, int]
    assigned: tuple[int, ...]
    last_assigned: float

    def room(self, channel: str) -> int:
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)
