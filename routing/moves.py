"""Manual moves on the router: transfer to an agent or to skills, unassign, supervisor
assignment. Mixed into `routing.core.Router`; same conventions (take `now`, return the
decisions caused)."""

from __future__ import annotations

from collections.abc import Iterable

from inbox.errors import Conflict
from inbox.types import Presence
from routing.decisions import TAKE_NEXT, Decision
from routing.engine import Engine
from routing.model import ASSIGNED, NO_DUE, AgentState, Conv


class ManualMoves(Engine):
    def unassign(self, conversation_id: int, now: float) -> list[Decision]:
        """Take it from its agent and queue it ahead; that agent is not offered it again
        for `accept_timeout_seconds`."""
        conv = self._assigned(conversation_id)
        agent = self._agents[conv.agent_id]  # type: ignore[index]
        self._release(conv, agent, now, "unassign")
        self._exclude(conv, agent.id, now)
        self._requeue(conv, now, "unassign")
        self._settle(agent, now)
        return self._flush()

    def transfer_to_agent(self, conversation_id: int, agent_id: int, now: float) -> list[Decision]:
        """Hand it to a named agent, who must be online, skilled and have room."""
        conv = self._conv(conversation_id)
        target = self._agent(agent_id)
        if target.presence is not Presence.ONLINE:
            raise Conflict(f"agent {agent_id} is {target.presence.value}")
        missing = conv.skills - target.skillset
        if missing:
            raise Conflict(f"agent {agent_id} lacks skills {sorted(missing)}")
        if not target.room(conv.channel):
            raise Conflict(f"agent {agent_id} has no room for another {conv.channel}")
        self._move(conv, target, now, "transfer", forced=False)
        return self._flush()

    def transfer_to_skills(
        self,
        conversation_id: int,
        skills: Iterable[str],
        now: float,
        *,
        optional_skills: Iterable[str] = (),
    ) -> list[Decision]:
        """Queue it again (ahead) for agents with other skills."""
        conv = self._conv(conversation_id)
        previous = self._agents.get(conv.agent_id) if conv.state == ASSIGNED else None  # type: ignore[arg-type]
        if previous is not None:
            self._release(conv, previous, now, "transfer")
        elif conv.bucket is not None:
            conv.bucket.drop_conv(conv)
        conv.skills, conv.optional = frozenset(skills), frozenset(optional_skills)
        self._requeue(conv, now, "transfer")
        if previous is not None:
            self._settle(previous, now)
        return self._flush()

    def take_next(self, agent_id: int, now: float) -> list[Decision]:
        """The agent pulls the best waiting conversation it is eligible for (skills, room
        on its channel; pull-only inboxes too), accepted at once: no offer, no timeout."""
        agent = self._agent(agent_id)
        conv = self._best_for(agent)
        if conv is None:
            raise Conflict("no waiting conversation you can take now", field="agent_id")
        self._assign(conv, agent, now, TAKE_NEXT)
        conv.accepted = True
        conv.accept_due = NO_DUE
        return self._flush()

    def supervisor_assign(
        self, conversation_id: int, agent_id: int, now: float, *, force: bool = False
    ) -> list[Decision]:
        """A supervisor's choice wins over skills and presence; capacity only with force."""
        conv = self._conv(conversation_id)
        target = self._agent(agent_id)
        if not force and not target.room(conv.channel):
            raise Conflict(
                f"agent {agent_id} is at capacity for {conv.channel}; pass force to exceed it"
            )
        self._move(conv, target, now, "supervisor", forced=not target.room(conv.channel))
        return self._flush()

    def _move(
        self, conv: Conv, target: AgentState, now: float, reason: str, *, forced: bool
    ) -> None:
        previous = None
        if conv.state == ASSIGNED:
            previous = self._agents[conv.agent_id]  # type: ignore[index]
            if previous is target:
                raise Conflict(f"conversation {conv.id} is already assigned to agent {target.id}")
            self._release(conv, previous, now, reason)
        self._assign(
            conv,
            target,
            now,
            reason,
            previous=None if previous is None else previous.id,
            forced=forced,
        )
        self._settle(target, now)
        if previous is not None:
            self._settle(previous, now)
