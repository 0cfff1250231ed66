"""The router's state and the moves every policy rule is built from (assign, release,
requeue, settle an agent, offer a conversation, timers). `routing.core.Router` adds the
public API on top; see its docstring for the policy."""

from __future__ import annotations

import heapq

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.types import Presence
from routing.decisions import Assigned, Decision, Relaxed, Requeued, SlaBreached, Unassigned
from routing.model import ASSIGNED, WAITING, AgentState, Bucket, Conv, ConvItem
from routing.settings import RoutingSettings

RELAX, SLA, ACCEPT, UNEXCLUDE = range(4)


def order(conv: Conv) -> tuple[int, int, float, int]:
    """Queue order: priority rank, requeued first, enqueued_at, arrival."""
    return (conv.rank, conv.front, conv.enqueued_at, conv.arrival)


class Engine:
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
