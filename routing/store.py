"""The router's side of the store: the router repository's rows as the router's
(`AgentRow`, `ConvRow`, with each agent's teams and each conversation's inbox as team
skills, see `routing.settings`), and the router's decisions as the repository's writes.

The SQL, and the guards that keep a stale decision or a deposed leader from overwriting a
newer fact, are `inbox.store.router_rows`': the router service reads with
`router_rows.snapshot` / `facts` / `conversations` and maps the rows here, and writes
`writes_of(decisions)` with `router_rows.persist`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from inbox.store.router_rows import (
    Assign,
    Keep,
    Reprioritize,
    Requeue,
    RouterAgent,
    RouterConversation,
    RouterSnapshot,
    Unassign,
    Write,
)
from routing.decisions import TAKE_NEXT, Assigned, Decision, Requeued, SlaBreached, Unassigned
from routing.settings import TEAM_PREFIX, team_skill

__all__ = ["AgentRow", "ConvRow", "Snapshot", "agent_row", "conv_row", "snapshot_of",
           "writes_of"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class AgentRow:
    id: int
    skills: Mapping[str, int]
    capacity: Mapping[str, int]
    presence: str
    active: bool


@dataclass(frozen=True, slots=True)
class ConvRow(RouterConversation):
    """A conversation as the router routes it: `skills` are its required skills and its
    inbox's team skill."""

    skills: tuple[str, ...] = ()

    @property
    def waiting(self) -> bool:
        return self.status == "open" and self.assignee_id is None and self.waiting_since is not None


@dataclass(frozen=True, slots=True)
class Snapshot:
    agents: list[AgentRow]
    waiting: list[ConvRow]
    assigned: list[ConvRow]


def agent_row(agent: RouterAgent) -> AgentRow:
    # level 0: a team is where an agent may work, not how well (see routing.settings)
    skills = {**agent.skills, **{team_skill(team): 0 for team in agent.teams}}
    return AgentRow(agent.id, skills, agent.capacity, agent.presence, agent.active)


def conv_row(conv: RouterConversation) -> ConvRow:
    return ConvRow(
        conv.id,
        conv.channel,
        conv.inbox,
        conv.status,
        conv.priority,
        conv.required_skills,
        conv.assignee_id,
        conv.waiting_since,
        conv.assigned_at,
        conv.requeued,
        conv.accepted,
        conv.team,
        # a conversation transferred to a team waits for that team's agents
        (*conv.required_skills, team_skill(conv.team or conv.inbox)),
    )


def snapshot_of(snap: RouterSnapshot) -> Snapshot:
    return Snapshot(
        [agent_row(a) for a in snap.agents],
        [conv_row(c) for c in snap.waiting],
        [conv_row(c) for c in snap.assigned],
    )


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def writes_of(decisions: Sequence[Decision], since: Mapping[int, float]) -> list[Write]:
    """Each decision as the write that stores it, in order. A requeued conversation waits
    from when it first started waiting (`since`); team skills are not stored (they follow
    from the inbox)."""
    out: list[Write] = []
    for d in decisions:
        cid = d.conversation_id
        if isinstance(d, Assigned):
            out.append(Assign(cid, d.agent_id, _dt(d.at), d.reason, d.reason == TAKE_NEXT))
        elif isinstance(d, Unassigned):
            out.append(Unassign(cid, d.agent_id, _dt(d.at), d.reason))
        elif isinstance(d, Requeued):
            skills = [s for s in d.skills if not s.startswith(TEAM_PREFIX)]
            out.append(Requeue(cid, _dt(since.get(cid, d.at)), d.priority, skills))
        elif isinstance(d, SlaBreached):
            out.append(Reprioritize(cid, d.priority))
        else:
            out.append(Keep(cid))
    return out
