"""The router's state and the moves every policy rule is built from (assign, release,
requeue, settle an agent, offer a conversation, timers). `routing.core.Router` adds the
public API on top; see its docstring for the policy."""

from __future__ import annotations

import heapq
from heapq import heappush
from operator import attrgetter

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.types import Presence
from routing.decisions import Assigned, Decision, Relaxed, Requeued, SlaBreached, Unassigned
from routing.model import ASSIGNED, EMPTY, WAITING, AgentState, Bucket, Conv, ConvItem
from routing.settings import QueueRules, RoutingSettings

RELAX, SLA, ACCEPT, UNEXCLUDE = range(4)
_TOP = attrgetter("top")  # a bucket's best live item


def order(conv: Conv) -> tuple[int, int, float, int]:
    """Queue order: priority rank, requeued first, enqueued_at, arrival."""
    return (conv.rank, conv.front, conv.enqueued_at, conv.arrival)


class Engine:
    def __init__(self, settings: RoutingSettings | None = None) -> None:
        self.settings = settings or RoutingSettings()
        self._levels = self.settings.priorities
        self._rank = {name: index for index, name in enumerate(self._levels)}
        self._sla = [self.settings.sla_seconds.get(name) for name in self._levels]
        self._accept_window = self.settings.accept_timeout_seconds
        self._rules: dict[str, QueueRules] = {}  # queue name -> settings.rules_for(name)
        # one shared frozenset per distinct skill set (as few as the buckets): a bucket
        # lookup then finds its hash cached and its key identical
        self._sets: dict[frozenset[str], frozenset[str]] = {}
        self._convs: dict[int, Conv] = {}
        self._agents: dict[int, AgentState] = {}
        self._buckets: dict[tuple[str, frozenset[str]], Bucket] = {}
        # (due, seq, kind, conversation id): ids, not conversations, so that a resolved
        # conversation is freed at once and the collector can untrack these tuples;
        # `tick` fires a timer only while its due is still that conversation's due
        self._timers: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._out: list[Decision] = []

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
        heapq.heappush(self._timers, (due, self._seq, kind, conv.id))

    def _bucket(self, channel: str, skills: frozenset[str]) -> Bucket:
        bucket = self._buckets.get((channel, skills))
        if bucket is None:
            bucket = self._buckets[(channel, skills)] = Bucket(channel, skills)
            for agent in self._agents.values():
                if skills <= agent.skillset:
                    level = agent.level_for(skills)
                    agent.add_bucket(bucket, level)
                    if channel in agent.registered and agent.available(channel):
                        bucket.push_agent(agent, level)
        return bucket

    def _place(self, conv: Conv, now: float) -> None:
        """Put a conversation (not in any bucket) into line and offer it."""
        conv.state = WAITING
        conv.agent_id = None
        conv.accept_due = None
        rules = conv.rules
        steps = rules.steps  # sorted by `after`
        since = conv.waiting_since
        if steps and now - since >= steps[0].after:
            stage = rules.stage_at(now - since)
            required = rules.required_at(conv.skills, conv.optional, stage)
        else:  # no step applies yet: the same as required_at(..., 0)
            stage = 0
            required = conv.skills | conv.optional if conv.optional else conv.skills
        conv.stage = stage
        conv.required = required
        if stage < len(steps):
            relax_due = since + steps[stage].after
            if relax_due != conv.relax_due:
                self._seq = seq = self._seq + 1
                heappush(self._timers, (relax_due, seq, RELAX, conv.id))
            conv.relax_due = relax_due
        else:
            conv.relax_due = None
        target = None if conv.responded else self._sla[conv.rank]
        if target is None:
            conv.sla_due = None
        else:
            sla_due = conv.sla_base + target
            if sla_due != conv.sla_due:
                self._seq = seq = self._seq + 1
                heappush(self._timers, (sla_due, seq, SLA, conv.id))
            conv.sla_due = sla_due
        channel = conv.channel
        bucket = self._buckets.get((channel, required))
        if bucket is None:
            bucket = self._bucket(channel, required)
        bucket.push_conv(conv)
        if bucket.agents:  # else nobody waits for this bucket: no offer to make
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
        aid, load, capacity, feeds = agent.id, agent.load, agent.capacity, agent.feeds
        while True:
            best = EMPTY  # the best bucket top over the agent's buckets with room
            for channel, buckets in feeds.items():
                if load.get(channel, 0) < capacity.get(channel, 0):
                    item = min(map(_TOP, buckets))
                    if item < best:
                        best = item
            conv = best[5]
            if conv is not None and aid in conv.excluded:
                best = self._best_for(agent)
                conv = best[5]
            if conv is None:
                break
            self._assign(conv, agent, now, "routed")
        registered, eligible = agent.registered, agent.eligible
        for channel, room in capacity.items():
            if channel not in registered and load.get(channel, 0) < room:
                registered.add(channel)  # also with no bucket yet: see _bucket
                for bucket, level in eligible.get(channel, ()):
                    bucket.push_agent(agent, level)

    def _best_for(self, agent: AgentState) -> ConvItem:
        """The slow path of `_settle`, when the best top has excluded this agent: the best
        conversation per bucket that has not (still exact: the others' tops are no better)."""
        best = EMPTY
        aid, load, capacity = agent.id, agent.load, agent.capacity
        for channel, buckets in agent.feeds.items():
            if load.get(channel, 0) >= capacity.get(channel, 0):
                continue
            for bucket in buckets:
                found = bucket.top_conv_for(aid)
                if found is not None:
                    item = found.item()
                    if item < best:
                        best = item
        return best

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
        bucket = conv.bucket
        if bucket is not None:
            bucket.drop_conv(conv)
        conv.state = ASSIGNED
        conv.agent_id = agent.id
        conv.accepted = False
        conv.relax_due = conv.sla_due = None
        timeout = self._accept_window
        if timeout > 0:
            conv.accept_due = due = now + timeout
            self._seq = seq = self._seq + 1
            heappush(self._timers, (due, seq, ACCEPT, conv.id))
        channel = conv.channel
        load = agent.load
        load[channel] = load.get(channel, 0) + 1
        agent.assigned.add(conv.id)
        agent.last_assigned = agent.last_at[channel] = now
        version = agent.version  # agent.bump(channel), inline: this runs per decision
        version[channel] = version.get(channel, 0) + 1
        agent.registered.discard(channel)
        if announce:
            self._out.append(Assigned(conv.id, agent.id, now, reason, previous, forced))

    def _release(self, conv: Conv, agent: AgentState, now: float, reason: str | None) -> None:
        channel = conv.channel
        agent.load[channel] -= 1
        agent.assigned.discard(conv.id)
        version = agent.version  # agent.bump(channel)
        version[channel] = version.get(channel, 0) + 1
        agent.registered.discard(channel)
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
        window = self._accept_window
        if window <= 0:
            return
        conv.excluded = {*conv.excluded, agent_id}
        conv.excl_due = now + window
        self._timer(conv.excl_due, UNEXCLUDE, conv)

    def _give_back(self, agent: AgentState, now: float, *, everything: bool) -> None:
        keep = self.settings.requeue_on_offline
        convs = [self._convs[cid] for cid in agent.assigned]
        back = [c for c in convs if everything or not c.accepted or c.channel in keep]
        for conv in sorted(back, key=order):
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
