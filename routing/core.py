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

See `routing.model` for the indexes that keep a decision independent of queue length.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.types import Presence
from routing.decisions import Assigned, Decision, Relaxed, Requeued, SlaBreached, Unassigned
from routing.model import ASSIGNED, WAITING, AgentState, Bucket, Conv, ConvItem
from routing.settings import RoutingSettings
from routing.views import AgentView, ConversationView, WaitingView

RELAX, SLA, ACCEPT, UNEXCLUDE = range(4)


class Router:
    def __init__(self, settings: RoutingSettings | None = None) -> None:
        self.settings = settings or RoutingSettings()
        self._levels = self.settings.priorities
        self._rank = {name: index for index, name in enumerate(self._levels)}
        self._sla = [self.settings.sla_seconds.get(name) for name in self._levels]
        self._convs: dict[int, Conv] = {}
        self._agents: dict[int, AgentState] = {}
        self._buckets: dict[tuple[str, frozenset[str]], Bucket] = {}
        self._timers: list[tuple[float, int, int, Conv]] = []
        self._seq = 0
        self._out: list[Decision] = []

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
        agent.eligible = {}
        for (channel, need), bucket in self._buckets.items():
            if need <= agent.skillset:
                agent.eligible.setdefault(channel, []).append((bucket, agent.level_for(need)))
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
        rank = self._rank_of(priority)
        conv = self._convs.get(conversation_id)
        previous: AgentState | None = None
        if conv is None:
            at = now if enqueued_at is None else enqueued_at
            self._seq += 1
            conv = Conv(
                conversation_id,
                channel,
                rank,
                at,
                frozenset(),
                frozenset(),
                self.settings.rules_for(queue),
                self._seq,
            )
            self._convs[conversation_id] = conv
        elif conv.state == ASSIGNED:
            previous = self._agents[conv.agent_id]  # type: ignore[index]
            self._release(conv, previous, now, "requeue")
        elif conv.bucket is not None:
            conv.bucket.drop_conv(conv)
        if enqueued_at is not None:
            conv.enqueued_at = conv.waiting_since = conv.sla_base = enqueued_at
        conv.rank, conv.channel = rank, channel
        conv.skills, conv.optional = frozenset(skills), frozenset(optional_skills)
        conv.rules = self.settings.rules_for(queue)
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
        priority: str,
        channel: str,
        skills: Iterable[str] = (),
        optional_skills: Iterable[str] = (),
        queue: str = "default",
        enqueued_at: float | None = None,
        accepted: bool = True,
    ) -> list[Decision]:
        """Rebuild at start: a conversation the database says is assigned. Load is taken
        as stored, even over capacity; an unaccepted offer gets a fresh accept timer."""
        agent = self._agent(agent_id)
        if conversation_id in self._convs:
            raise Conflict(f"conversation {conversation_id} is already known to the router")
        self._seq += 1
        at = now if enqueued_at is None else enqueued_at
        conv = Conv(
            conversation_id,
            channel,
            self._rank_of(priority),
            at,
            frozenset(skills),
            frozenset(optional_skills),
            self.settings.rules_for(queue),
            self._seq,
        )
        conv.responded = accepted
        self._convs[conversation_id] = conv
        self._assign(conv, agent, now, "restored", announce=False)
        conv.accepted = accepted
        if accepted:
            conv.accept_due = None
        self._settle(agent, now)
        return self._flush()

    def accept(self, conversation_id: int, now: float, *, replied: bool = False) -> list[Decision]:
        """The assigned agent accepted (or answered): the accept timer stops."""
        conv = self._conv(conversation_id)
        if conv.state != ASSIGNED:
            raise Conflict(f"conversation {conversation_id} is not assigned")
        conv.accepted = True
        conv.accept_due = None
        conv.responded = conv.responded or replied
        return self._flush()

    def resolve(self, conversation_id: int, now: float) -> list[Decision]:
        """The conversation is done (resolved/closed): it leaves the router."""
        conv = self._convs.pop(conversation_id, None)
        if conv is None:
            return []
        if conv.state == WAITING and conv.bucket is not None:
            conv.bucket.drop_conv(conv)
        elif conv.state == ASSIGNED:
            agent = self._agents.get(conv.agent_id)  # type: ignore[arg-type]
            if agent is not None:
                self._release(conv, agent, now, None)
                self._settle(agent, now)
        conv.state = -1
        return self._flush()

    # == manual moves =====================================================================
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

    # == time =============================================================================
    def tick(self, now: float) -> list[Decision]:
        """Fire every timer due by `now`: relaxation, SLA, accept timeouts, exclusions."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, _, kind, conv = heapq.heappop(timers)
            if self._convs.get(conv.id) is not conv:
                continue
            if kind == RELAX and conv.state == WAITING and conv.relax_due == due:
                self._relax(conv, now)
            elif kind == SLA and conv.state == WAITING and conv.sla_due == due:
                self._breach(conv, now)
            elif kind == ACCEPT and conv.state == ASSIGNED and conv.accept_due == due:
                self._accept_timeout(conv, now)
            elif kind == UNEXCLUDE and conv.excl_due == due:
                conv.excluded.clear()
                conv.excl_due = None
                if conv.state == WAITING:
                    self._offer(conv, now)
        return self._flush()

    def next_due(self) -> float | None:
        """When `tick` next has something to do (a lower bound), or None."""
        return self._timers[0][0] if self._timers else None

    # == views ============================================================================
    def waiting(self, limit: int | None = None) -> list[WaitingView]:
        convs = sorted((c for c in self._convs.values() if c.state == WAITING), key=_order)[:limit]
        return [self._waiting_view(n, c) for n, c in enumerate(convs, start=1)]

    def position(self, conversation_id: int) -> int | None:
        conv = self._convs.get(conversation_id)
        if conv is None or conv.state != WAITING:
            return None
        key = _order(conv)
        return 1 + sum(1 for c in self._convs.values() if c.state == WAITING and _order(c) < key)

    @property
    def waiting_count(self) -> int:
        return sum(b.live for b in self._buckets.values())

    def conversation(self, conversation_id: int) -> ConversationView | None:
        c = self._convs.get(conversation_id)
        if c is None:
            return None
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

    def agent(self, agent_id: int) -> AgentView | None:
        a = self._agents.get(agent_id)
        if a is None:
            return None
        return AgentView(
            a.id,
            a.presence.value,
            dict(a.levels),
            dict(a.capacity),
            {k: v for k, v in a.load.items() if v},
            tuple(sorted(a.assigned)),
            a.last_assigned,
        )

    def agents(self) -> list[AgentView]:
        return [v for v in (self.agent(a) for a in sorted(self._agents)) if v is not None]

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

    # == internals ========================================================================
    def _flush(self) -> list[Decision]:
        out, self._out = self._out, []
        return out

    def _rank_of(self, priority: str) -> int:
        try:
            return self._rank[priority]
        except KeyError:
            raise ValidationError(
                f"unknown priority {priority!r}; levels are {list(self._levels)}", field="priority"
            ) from None

    def _conv(self, conversation_id: int) -> Conv:
        conv = self._convs.get(conversation_id)
        if conv is None:
            raise NotFound(f"conversation {conversation_id} is not in the router")
        return conv

    def _assigned(self, conversation_id: int) -> Conv:
        conv = self._conv(conversation_id)
        if conv.state != ASSIGNED:
            raise Conflict(f"conversation {conversation_id} is not assigned")
        return conv

    def _agent(self, agent_id: int) -> AgentState:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} is not known to the router")
        return agent

    def _timer(self, due: float, kind: int, conv: Conv) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, conv))

    def _bucket(self, channel: str, skills: frozenset[str]) -> Bucket:
        bucket = self._buckets.get((channel, skills))
        if bucket is None:
            bucket = self._buckets[(channel, skills)] = Bucket(channel, skills)
            for agent in self._agents.values():
                if skills <= agent.skillset:
                    level = agent.level_for(skills)
                    agent.eligible.setdefault(channel, []).append((bucket, level))
                    registered = agent.registered.get(channel, -1)
                    if registered == agent.version.get(channel, 0) and agent.available(channel):
                        bucket.push_agent(agent, level)
        return bucket

    def _place(self, conv: Conv, now: float) -> None:
        """Put a conversation (not in any bucket) into line and offer it."""
        conv.state = WAITING
        conv.agent_id = None
        conv.accept_due = None
        rules = conv.rules
        stage = rules.stage_at(now - conv.waiting_since)
        conv.stage = stage
        conv.required = rules.required_at(conv.skills, conv.optional, stage)
        relax_due = (
            conv.waiting_since + rules.steps[stage].after if stage < len(rules.steps) else None
        )
        if relax_due is not None and relax_due != conv.relax_due:
            self._timer(relax_due, RELAX, conv)
        conv.relax_due = relax_due
        target = None if conv.responded else self._sla[conv.rank]
        sla_due = None if target is None else conv.sla_base + target
        if sla_due is not None and sla_due != conv.sla_due:
            self._timer(sla_due, SLA, conv)
        conv.sla_due = sla_due
        self._bucket(conv.channel, conv.required).push_conv(conv)
        self._offer(conv, now)

    def _offer(self, conv: Conv, now: float) -> None:
        agent = conv.bucket.best_agent(conv.excluded)  # type: ignore[union-attr]
        if agent is not None:
            self._assign(conv, agent, now, "routed")
            self._settle(agent, now)

    def _settle(self, agent: AgentState, now: float) -> None:
        """Let an agent pull the best conversations it can take, then wait in the
        agent heaps of its buckets for the channels where it still has room."""
        if agent.presence is not Presence.ONLINE:
            return
        aid, load, capacity = agent.id, agent.load, agent.capacity
        while True:
            best: ConvItem | None = None  # the best heap top over the agent's buckets
            for channel, buckets in agent.eligible.items():
                if load.get(channel, 0) >= capacity.get(channel, 0):
                    continue
                for bucket, _ in buckets:
                    if not bucket.live:
                        continue
                    item = bucket.convs[0]
                    conv = item[5]
                    if conv.token != item[4] or conv.bucket is not bucket or aid in conv.excluded:
                        found = bucket.top_conv_for(aid)
                        if found is None:
                            continue
                        item = found.item()
                    if best is None or item < best:
                        best = item
            if best is None:
                break
            self._assign(best[5], agent, now, "routed")
        version, registered, eligible = agent.version, agent.registered, agent.eligible
        for channel in agent.capacity:
            current = version.get(channel, 0)
            if registered.get(channel, -1) != current and agent.room(channel):
                registered[channel] = current  # also with no bucket yet: see _bucket
                for bucket, level in eligible.get(channel, ()):
                    bucket.push_agent(agent, level)

    def _assign(
        self,
        conv: Conv,
        agent: AgentState,
        now: float,
        reason: str,
        *,
        previous: int | None = None,
        forced: bool = False,
        announce: bool = True,
    ) -> None:
        if conv.bucket is not None:
            conv.bucket.drop_conv(conv)
        conv.state = ASSIGNED
        conv.agent_id = agent.id
        conv.accepted = False
        conv.relax_due = conv.sla_due = None
        timeout = self.settings.accept_timeout_seconds
        if timeout > 0:
            conv.accept_due = now + timeout
            self._timer(conv.accept_due, ACCEPT, conv)
        channel = conv.channel
        agent.load[channel] = agent.load.get(channel, 0) + 1
        agent.assigned.add(conv.id)
        agent.last_assigned = agent.last_at[channel] = now
        agent.bump(channel)
        if announce:
            self._out.append(Assigned(conv.id, agent.id, now, reason, previous, forced))

    def _release(self, conv: Conv, agent: AgentState, now: float, reason: str | None) -> None:
        agent.load[conv.channel] -= 1
        agent.assigned.discard(conv.id)
        agent.bump(conv.channel)
        conv.agent_id = None
        conv.accept_due = None
        if reason is not None:
            self._out.append(Unassigned(conv.id, agent.id, now, reason))

    def _requeue(self, conv: Conv, now: float, reason: str) -> None:
        conv.front = 0
        conv.waiting_since = now
        conv.relax_due = None
        conv.required = conv.skills | conv.optional
        self._out.append(
            Requeued(conv.id, now, self._levels[conv.rank], tuple(sorted(conv.skills)), reason)
        )
        self._place(conv, now)

    def _exclude(self, conv: Conv, agent_id: int, now: float) -> None:
        window = self.settings.accept_timeout_seconds
        if window <= 0:
            return
        conv.excluded.add(agent_id)
        conv.excl_due = now + window
        self._timer(conv.excl_due, UNEXCLUDE, conv)

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

    def _give_back(self, agent: AgentState, now: float, *, everything: bool) -> None:
        keep = self.settings.requeue_on_offline
        convs = [self._convs[cid] for cid in agent.assigned]
        back = [c for c in convs if everything or not c.accepted or c.channel in keep]
        for conv in sorted(back, key=_order):
            self._release(conv, agent, now, "offline")
            self._requeue(conv, now, "agent_offline")

    def _relax(self, conv: Conv, now: float) -> None:
        rules = conv.rules
        after = rules.required_at(
            conv.skills, conv.optional, rules.stage_at(now - conv.waiting_since)
        )
        if after != conv.required:
            self._out.append(Relaxed(conv.id, now, tuple(sorted(after))))
        conv.bucket.drop_conv(conv)  # type: ignore[union-attr]
        self._place(conv, now)

    def _breach(self, conv: Conv, now: float) -> None:
        target = self._sla[conv.rank] or 0.0
        old = conv.rank
        conv.rank = max(0, old - 1)
        conv.sla_base = now
        self._out.append(
            SlaBreached(
                conv.id,
                now,
                self._levels[old],
                self._levels[conv.rank],
                now - conv.enqueued_at,
                target,
            )
        )
        conv.bucket.drop_conv(conv)  # type: ignore[union-attr]
        if old == 0:
            conv.responded = True  # at the top level: one event, then no more SLA timers
        self._place(conv, now)

    def _accept_timeout(self, conv: Conv, now: float) -> None:
        agent = self._agents[conv.agent_id]  # type: ignore[index]
        self._release(conv, agent, now, "accept_timeout")
        self._exclude(conv, agent.id, now)
        self._requeue(conv, now, "accept_timeout")
        self._settle(agent, now)


def _order(conv: Conv) -> tuple[int, int, float, int]:
    return (conv.rank, conv.front, conv.enqueued_at, conv.arrival)
