"""The pure router: who gets which waiting conversation. No I/O, no asyncio, no clock.

Every method takes `now` (epoch seconds) and returns the decisions it caused, in order, as
plain data (`routing.decisions`); the service persists each `Assigned` before announcing
it. The policy:

* the best waiting conversation (priority, then requeued-first, then longest wait) goes to
  the eligible agent (online, every required skill, room on that channel) with the best
  skill level (sum over required skills), then the lowest load relative to capacity,
  then the longest idle;
* an agent who frees up or comes online pulls the best conversation it can take;
* per-queue relaxation steps require fewer skills as a conversation waits;
* a first-response SLA breach raises the priority one level (`SlaBreached`);
* an agent going offline gives back open chats and unaccepted offers, queued ahead;
* an offer neither accepted nor answered in time goes to someone else;
* transfers, unassign and supervisor assignment (over capacity only when forced).

See `routing.model` and `routing.bucket` for the indexes that keep a decision independent
of queue length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Required, TypedDict, Unpack

from inbox.errors import Conflict
from inbox.types import Presence
from routing.decisions import Decision
from routing.engine import SPARE_CONVS, Engine
from routing.model import ASSIGNED, NO_DUE, NO_SKILLS, AgentState, Conv
from routing.moves import ManualMoves
from routing.queries import Queries
from routing.timed import TimedMoves


class Placement(TypedDict, total=False):
    """Where a conversation waits and its place in line: the keywords of
    `Router.restore_assignment`, and of `Router.enqueue` (which spells them out: it is
    called once per decision)."""

    priority: Required[str]
    channel: Required[str]
    skills: Iterable[str]
    optional_skills: Iterable[str]
    queue: str  # whose rules (relaxation steps) apply
    enqueued_at: float | None  # None: now


class Router(ManualMoves, TimedMoves, Queries, Engine):
    """The pure router. Construct with `RoutingSettings`; every method takes `now`."""

    # == agents ===========================================================================
    def upsert_agent(
        self,
        agent_id: int,
        skills: Mapping[str, int],
        now: float,
        *,
        capacity: Mapping[str, int] | None = None,
        presence: Presence | None = None,
    ) -> list[Decision]:
        """Add an agent or change its skills (skill -> level) and per-channel capacity."""
        cap = dict(self.settings.capacity)
        cap.update(capacity or {})
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = AgentState(agent_id, dict(skills), cap)
        else:
            agent.levels, agent.skillset, agent.capacity = dict(skills), frozenset(skills), cap
            agent.recount_room()
        agent.clear_buckets()
        for (_, need), bucket in self._buckets.items():
            if need <= agent.skillset:
                agent.add_bucket(bucket, agent.level_for(need))
        agent.bump()
        if presence is not None and presence is not agent.presence:
            return self.set_presence(agent_id, presence, now)
        self._settle(agent, now)
        return self._flush()

    def set_presence(self, agent_id: int, presence: Presence, now: float) -> list[Decision]:
        """Online, away (keeps its work, gets no new) or offline (gives back chats).

        The service calls this with OFFLINE when an agent's sockets have been gone for
        `offline_grace_seconds`."""
        agent = self._agent(agent_id)
        agent.presence = Presence(presence)
        agent.bump()
        if agent.presence is Presence.OFFLINE:
            self._give_back(agent, now, everything=False)
        self._settle(agent, now)
        return self._flush()

    def remove_agent(self, agent_id: int, now: float) -> list[Decision]:
        agent = self._agent(agent_id)
        agent.presence = Presence.OFFLINE
        agent.bump()
        self._give_back(agent, now, everything=True)
        del self._agents[agent_id]
        return self._flush()

    # == conversations ====================================================================
    def enqueue(
        self,
        conversation_id: int,
        now: float,
        *,
        priority: str,
        channel: str,
        skills: Iterable[str] = (),
        optional_skills: Iterable[str] = (),
        queue: str = "default",
        enqueued_at: float | None = None,
        responded: bool = False,
    ) -> list[Decision]:
        """A conversation waits for an agent (or its priority/skills changed while waiting).

        An assigned conversation queued again is taken from its agent first."""
        # subscripts in a try rather than dict.get: the try costs nothing when the key is
        # there (the usual), a method call does
        try:
            rank = self._rank[priority]
        except KeyError:
            rank = self._rank_of(priority)  # raises
        try:
            rules = self._rules[queue]
        except KeyError:
            rules = self._rules[queue] = self.settings.rules_for(queue)
        if conversation_id not in self._convs:  # the common case: a new conversation
            need = self._sets.get(skills) if type(skills) is tuple else None
            if need is None:
                need = self._skill_set(skills)
            self._seq = seq = self._seq + 1
            at = now if enqueued_at is None else enqueued_at
            optional = frozenset(optional_skills) if optional_skills else NO_SKILLS
            cid = conversation_id
            if self._spare:
                conv = self._spare.pop()
                conv.renew(cid, channel, rank, at, need, optional, rules, seq, responded)
            else:
                conv = Conv(cid, channel, rank, at, need, optional, rules, seq, responded)
            self._convs[conversation_id] = conv
            self._place(conv, now)
            out, self._out = self._out, []  # self._flush(), inline: a call per decision
            return out
        conv = self._convs[conversation_id]
        previous: AgentState | None = None
        if conv.state == ASSIGNED:
            previous = self._agents[conv.agent_id]  # type: ignore[index]
            self._release(conv, previous, now, "requeue")
        elif conv.bucket is not None:
            conv.bucket.drop_conv(conv)
        if enqueued_at is not None:
            conv.enqueued_at = conv.waiting_since = conv.sla_base = enqueued_at
        conv.rank, conv.channel = rank, channel
        conv.skills, conv.optional = frozenset(skills), frozenset(optional_skills)
        conv.rules = rules
        conv.responded = conv.responded or responded
        if previous is None:
            self._place(conv, now)
        else:
            self._requeue(conv, now, "requeue")
            self._settle(previous, now)
        return self._flush()

    def restore_assignment(
        self,
        conversation_id: int,
        agent_id: int,
        now: float,
        *,
        accepted: bool = True,
        **placement: Unpack[Placement],
    ) -> list[Decision]:
        """Rebuild at start: a conversation the database says is assigned. Load is taken
        as stored, even over capacity; an unaccepted offer gets a fresh accept timer."""
        agent = self._agent(agent_id)
        if conversation_id in self._convs:
            raise Conflict(f"conversation {conversation_id} is already known to the router")
        self._seq += 1
        enqueued_at = placement.get("enqueued_at")
        conv = Conv(
            conversation_id,
            placement["channel"],
            self._rank_of(placement["priority"]),
            now if enqueued_at is None else enqueued_at,
            frozenset(placement.get("skills", ())),
            frozenset(placement.get("optional_skills", ())),
            self.settings.rules_for(placement.get("queue", "default")),
            self._seq,
            accepted,  # responded
        )
        self._convs[conversation_id] = conv
        self._assign(conv, agent, now, "restored", announce=False)
        conv.accepted = accepted
        if accepted:
            conv.accept_due = NO_DUE
        self._settle(agent, now)
        return self._flush()

    def accept(self, conversation_id: int, now: float, replied: bool = False) -> list[Decision]:
        """The assigned agent accepted (or answered): the accept timer stops.

        `replied` may be passed by position: a call with a keyword-only parameter in the
        signature is never specialized by the interpreter (a call per decision)."""
        try:  # self._assigned(), inline: once per decision
            conv = self._convs[conversation_id]
        except KeyError:
            conv = self._assigned(conversation_id)  # raises NotFound
        if conv.state != ASSIGNED:
            conv = self._assigned(conversation_id)  # raises Conflict
        conv.accepted = True
        conv.accept_due = NO_DUE
        if replied:
            conv.responded = True
        return []  # decides nothing (and _out is empty between calls)

    def resolve(self, conversation_id: int, now: float) -> list[Decision]:
        """The conversation is done (resolved/closed): it leaves the router."""
        conv = self._convs.pop(conversation_id, None)
        if conv is None:
            return []
        if conv.state == ASSIGNED:
            agent = self._agents.get(conv.agent_id)  # type: ignore[arg-type]
            if agent is not None:
                self._vacate(conv, agent, now)
        elif conv.bucket is not None:  # waiting
            conv.bucket.drop_conv(conv)
        conv.state = -1
        if len(self._spare) < SPARE_CONVS:
            self._spare.append(conv)  # nothing refers to it any more: see Engine._spare
        out, self._out = self._out, []  # self._flush(), inline: a call per decision
        return out
