"""Read-only queries on the router (queue listing, positions, agent and conversation
snapshots). Mixed into `routing.core.Router`."""

from __future__ import annotations

from routing.engine import Engine, order
from routing.model import WAITING, AgentState, Conv
from routing.views import AgentView, ConversationView, WaitingView


class Queries(Engine):
    def waiting(self, limit: int | None = None) -> list[WaitingView]:
        convs = sorted((c for c in self._convs.values() if c.state == WAITING), key=order)[:limit]
        return [self._waiting_view(n, c) for n, c in enumerate(convs, start=1)]

    def position(self, conversation_id: int) -> int | None:
        conv = self._convs.get(conversation_id)
        if conv is None or conv.state != WAITING:
            return None
        key = order(conv)
        return 1 + sum(1 for c in self._convs.values() if c.state == WAITING and order(c) < key)

    @property
    def waiting_count(self) -> int:
        return sum(b.live for b in self._buckets.values())

    def conversation(self, conversation_id: int) -> ConversationView | None:
        c = self._convs.get(conversation_id)
        return None if c is None else self._conversation_view(c)

    def agent(self, agent_id: int) -> AgentView | None:
        a = self._agents.get(agent_id)
        return None if a is None else _agent_view(a)

    def agents(self) -> list[AgentView]:
        return [_agent_view(self._agents[a]) for a in sorted(self._agents)]

    def _conversation_view(self, c: Conv) -> ConversationView:
        return ConversationView(
            c.id,
            "waiting" if c.state == WAITING else "assigned",
            self._levels[c.rank],
            c.channel,
            c.agent_id,
            c.accepted,
            tuple(sorted(c.required)),
            tuple(sorted(c.excluded)),
        )

    def _waiting_view(self, n: int, c: Conv) -> WaitingView:
        return WaitingView(
            n,
            c.id,
            self._levels[c.rank],
            c.channel,
            c.enqueued_at,
            c.waiting_since,
            tuple(sorted(c.skills)),
            tuple(sorted(c.optional)),
            tuple(sorted(c.required)),
            c.front == 0,
            tuple(sorted(c.excluded)),
        )


def _agent_view(a: AgentState) -> AgentView:
    return AgentView(
        a.id,
        a.presence.value,
        dict(a.levels),
        dict(a.capacity),
        a.loads(),
        tuple(sorted(a.assigned)),
        a.last_assigned,
    )
