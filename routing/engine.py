"""The router's state and the moves every policy rule is built from (place a conversation
in line, offer it, assign, release, requeue, settle an agent, set a timer).
`routing.core.Router` adds the public API on top (see its docstring for the policy);
`routing.timed` fires the timers, `routing.moves` makes the manual moves."""

from __future__ import annotations

from collections.abc import Iterable

from inbox.errors import Conflict, NotFound, ValidationError
from routing.bucket import Bucket
from routing.decisions import Assigned, Decision, Requeued, Unassigned, build
from routing.keys import EMPTY, TOKEN_MASK, Tops
from routing.model import ASSIGNED, NO_DUE, ONLINE, WAITING, AgentState, Conv, Seat
from routing.settings import QueueRules, RoutingSettings, team_skill
from routing.timers import Lane, Timers

RELAX, SLA, ACCEPT, UNEXCLUDE = range(4)
SPARE_CONVS = 4096  # resolved conversations' objects kept for reuse, at most


def order(conv: Conv) -> tuple[int, int, float, int]:
    """Queue order: priority rank, requeued first, enqueued_at, arrival."""
    return (conv.rank, conv.front, conv.enqueued_at, conv.arrival)


class Engine:
    def __init__(self, settings: RoutingSettings | None = None) -> None:
        self.settings = settings or RoutingSettings()
        self._levels = self.settings.priorities
        self._rank = {name: index for index, name in enumerate(self._levels)}
        self._sla = [self.settings.sla_seconds.get(name) for name in self._levels]
        self._accept_window = float(self.settings.accept_timeout_seconds)  # compared to 0.0
        self._rules: dict[str, QueueRules] = {}  # queue name -> settings.rules_for(name)
        # the team skills of pull-only inboxes: their buckets are never offered from
        self._pull_only = frozenset(team_skill(inbox) for inbox in self.settings.pull_only)
        # one shared frozenset per distinct skill set (as few as the buckets): a bucket
        # lookup then finds its hash cached and its key identical; also keyed by the tuples
        # callers pass (the service's rows hold tuples), so that enqueue builds no set
        self._sets: dict[frozenset[str] | tuple[str, ...], frozenset[str]] = {}
        self._convs: dict[int, Conv] = {}
        self._waiting: dict[int, Conv] = {}  # token -> conversation, of each live bucket item
        self._agents: dict[int, AgentState] = {}
        self._buckets: dict[tuple[str, frozenset[str]], Bucket] = {}
        self._tops: Tops = [EMPTY]  # every bucket's top, at its slot (see routing.keys)
        # (due, seq, kind, conversation id): ids, not conversations, so that a resolved
        # conversation is freed at once; `tick` fires a timer only while its due is still
        # that conversation's due. The lanes of the timers set on every decision are
        # looked up here once (see routing.timers).
        self._timers = Timers()
        self._accept_lane = self._timers.lane(ACCEPT, self._accept_window)
        # per priority level (a level without an SLA target sets no timer in its lane)
        self._sla_lanes = [self._timers.lane(SLA, target or 0.0) for target in self._sla]
        self._relax_lanes: dict[float, Lane] = {}  # a relaxation step's `after` -> its lane
        self._seq = 0
        self._out: list[Decision] = []
        # Resolved conversations' objects, renewed for new ones. Nothing else holds a
        # resolved conversation (heap items are ints, timers and agents hold ids, _waiting
        # only conversations in a bucket), and a conversation is the one GC-tracked object
        # a decision leaves behind: a new one per arrival was walked by the young, the
        # middle and the full collections, while a reused one stays in the old generation
        # (or the frozen one, after the service's rebuild).
        self._spare: list[Conv] = []

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

    def _skill_set(self, skills: Iterable[str]) -> frozenset[str]:
        """The shared frozenset of these skills (see `_sets`)."""
        need = frozenset(skills)
        need = self._sets.setdefault(need, need)
        if type(skills) is tuple:
            self._sets[skills] = need
        return need

    def _timer(self, lane: Lane, due: float, conv: Conv) -> None:
        self._seq += 1
        self._timers.push(lane, due, self._seq, conv.id)

    def _relax_lane(self, after: float) -> Lane:
        lane = self._relax_lanes.get(after)
        if lane is None:
            lane = self._relax_lanes[after] = self._timers.lane(RELAX, after)
        return lane

    def _bucket(self, channel: str, skills: frozenset[str]) -> Bucket:
        bucket = self._buckets.get((channel, skills))
        if bucket is None:
            bucket = self._buckets[(channel, skills)] = Bucket(
                channel, skills, self._waiting, self._tops
            )
            bucket.pull_only = not skills.isdisjoint(self._pull_only)
            for agent in self._agents.values():
                if skills <= agent.skillset:
                    level = agent.level_for(skills)
                    agent.add_bucket(bucket, level)
                    if bucket.pull_only:
                        continue
                    if channel in agent.registered and agent.available(channel):
                        bucket.push_agent(agent, level)
        return bucket

    def _place(self, conv: Conv, now: float) -> None:
        """Put a waiting conversation (not in any bucket) into line and offer it."""
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
            after = steps[stage].after
            relax_due = since + after
            if relax_due != conv.relax_due:
                self._seq = seq = self._seq + 1
                try:
                    lane = self._relax_lanes[after]
                except KeyError:
                    lane = self._relax_lane(after)
                self._timers.push(lane, relax_due, seq, conv.id)
            conv.relax_due = relax_due
        else:
            conv.relax_due = NO_DUE
        target = None if conv.responded else self._sla[conv.rank]
        if target is None:
            conv.sla_due = NO_DUE
        else:
            sla_due = conv.sla_base + target
            if sla_due != conv.sla_due:
                self._seq = seq = self._seq + 1
                self._timers.push(self._sla_lanes[conv.rank], sla_due, seq, conv.id)
            conv.sla_due = sla_due
        channel = conv.channel
        try:  # rather than get(): a try costs nothing when the bucket is there (the usual)
            bucket = self._buckets[(channel, required)]
        except KeyError:
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
        if agent.presence is not ONLINE:
            return
        pulls, tops = agent.pulls, self._tops
        while pulls:
            best = EMPTY  # the best bucket top over the agent's buckets with room
            for pick in pulls.values():
                item = min(pick(tops))
                if item < best:
                    best = item
            if best == EMPTY:
                break
            conv = self._waiting[best & TOKEN_MASK]
            if agent.id in conv.excluded:
                found = self._best_for(agent, pull=False)
                if found is None:
                    break
                conv = found
            self._assign(conv, agent, now, "routed")
        has_room, registered = agent.has_room, agent.registered
        if not has_room or has_room <= registered:  # a full agent (the usual) skips the subset test
            return
        eligible = agent.eligible
        for channel in has_room:
            if channel not in registered:
                registered.add(channel)  # also with no bucket yet: see _bucket
                for bucket, level in eligible.get(channel, ()):
                    bucket.push_agent(agent, level)

    def _best_for(self, agent: AgentState, pull: bool = True) -> Conv | None:
        """The slow path of `_settle`, when the best top has excluded this agent: the best
        conversation per bucket that has not (still exact: the others' tops are no better).
        With `pull` (an agent's "take next") pull-only inboxes' buckets count too."""
        best, conv = EMPTY, None
        aid, has_room = agent.id, agent.has_room
        for channel, buckets in agent.feeds.items():
            if channel not in has_room:
                continue
            for bucket in buckets:
                if bucket.pull_only and not pull:
                    continue
                found = bucket.top_conv_for(aid)
                if found is not None:
                    item = found.item()
                    if item < best:
                        best, conv = item, found
        return conv

    def _assign(
        self,
        conv: Conv,
        agent: AgentState,
        now: float,
        reason: str,
        # positional, with defaults, rather than keyword-only: the interpreter
        # specializes the call only then (a call per decision)
        previous: int | None = None,
        forced: bool = False,
        announce: bool = True,
    ) -> None:
        bucket = conv.bucket
        if bucket is not None:
            bucket.drop_conv(conv)
        channel = conv.channel
        seat = agent.seats.get(channel)  # agent.seat(channel), inline: once per decision
        if seat is None:
            seat = agent.seat(channel)
        seat.load = count = seat.load + 1
        if count >= seat.capacity:
            agent.has_room.discard(channel)
            agent.pulls.pop(channel, None)
        registered = agent.registered  # agent.bump(channel), inline: this runs per decision
        if channel in registered:  # (a full agent usually is not: nothing to retire)
            registered.discard(channel)
            agent.version[channel] = agent.version.get(channel, 0) + 1
        self._hand_over(conv, agent, seat, now)
        if announce:
            self._out.append(build(Assigned, (conv.id, agent.id, now, reason, previous, forced)))

    def _hand_over(self, conv: Conv, agent: AgentState, seat: Seat, now: float) -> None:
        """The part of `_assign` after the seat is counted (and the conversation out of
        its bucket) and before it is announced: the conversation is the agent's, offered
        until accepted."""
        conv.state = ASSIGNED
        conv.agent_id = agent.id
        conv.accepted = False
        conv.relax_due = conv.sla_due = NO_DUE
        timeout = self._accept_window
        if timeout > 0.0:
            conv.accept_due = due = now + timeout
            self._seq = seq = self._seq + 1
            self._timers.push(self._accept_lane, due, seq, conv.id)
        agent.assigned.add(conv.id)
        agent.last_assigned = seat.last_at = now

    def _vacate(self, conv: Conv, agent: AgentState, now: float) -> None:
        """A resolved conversation leaves its agent: `_release` (no decision) and
        `_settle`, with the common case first. An agent whose channels with room have no
        bucket for it (`pulls` empty: full wherever it can get work) and who frees a seat
        pulls from that channel's buckets alone, and the one it takes has the seat the
        resolved one had: no load to count down and up, no room to note and retract, no
        other channel to compare, nothing to register or retire."""
        channel = conv.channel
        seat = agent.seats[channel]
        if seat.load <= seat.capacity and not agent.pulls and agent.presence is ONLINE:
            pick = seat.pick
            if pick is not None:
                best = min(pick(self._tops))
                if best != EMPTY:
                    found = self._waiting[best & TOKEN_MASK]
                    if agent.id not in found.excluded:
                        agent.assigned.discard(conv.id)
                        found.bucket.drop_conv(found)  # type: ignore[union-attr]
                        self._hand_over(found, agent, seat, now)
                        self._out.append(
                            build(Assigned, (found.id, agent.id, now, "routed", None, False))
                        )
                        return
        self._release(conv, agent, now, None)
        self._settle(agent, now)

    def _release(self, conv: Conv, agent: AgentState, now: float, reason: str | None) -> None:
        channel = conv.channel
        seat = agent.seats[channel]
        seat.load = count = seat.load - 1
        if count < seat.capacity:
            agent.has_room.add(channel)
            pick = agent.picks.get(channel)
            if pick is not None:
                agent.pulls[channel] = pick
        agent.assigned.discard(conv.id)
        registered = agent.registered  # agent.bump(channel)
        if channel in registered:
            registered.discard(channel)
            agent.version[channel] = agent.version.get(channel, 0) + 1
        conv.agent_id = None
        conv.accept_due = NO_DUE
        if reason is not None:
            self._out.append(build(Unassigned, (conv.id, agent.id, now, reason)))

    def _requeue(self, conv: Conv, now: float, reason: str) -> None:
        """Queue a released conversation again, ahead of fresh ones of its priority."""
        conv.state = WAITING
        conv.front = 0
        conv.waiting_since = now
        conv.relax_due = NO_DUE
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
        self._timer(self._timers.lane(UNEXCLUDE, window), conv.excl_due, conv)

    def _give_back(self, agent: AgentState, now: float, *, everything: bool) -> None:
        keep = self.settings.requeue_on_offline
        convs = [self._convs[cid] for cid in agent.assigned]
        back = [c for c in convs if everything or not c.accepted or c.channel in keep]
        for conv in sorted(back, key=order):
            self._release(conv, agent, now, "offline")
            self._requeue(conv, now, "agent_offline")
