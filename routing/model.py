"""The router's mutable state: conversations, agents, and the buckets that index them.

A bucket holds the waiting conversations of one (channel, required skill set), as a heap
ordered by (priority rank, requeued-first, enqueued_at, arrival). Beside it, a heap of the
agents who qualify for the bucket and have room right now, ordered by (best skill level,
lowest load relative to capacity, longest idle). Both heaps delete lazily: an item is live
while its token (conversation) or version (agent) is the current one. An agent keeps, per
channel, the list of buckets whose skill set is a subset of its skills, so a decision
looks at a handful of heap tops and never scans all agents or all conversations.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Set
from heapq import heapify, heappop, heappush
from typing import Any

from inbox.types import Presence
from routing.settings import QueueRules

WAITING = 0
ASSIGNED = 1

# conversation heap item: (rank, front, enqueued_at, arrival, token, conv)
ConvItem = tuple[int, int, float, int, int, "Conv"]
# the top of an empty bucket: orders after every real item (rank is an index of a level)
EMPTY: ConvItem = (1 << 62, 0, 0.0, 0, 0, None)  # type: ignore[assignment]
# agent heap item: (-level, load/capacity, last assigned on the channel, agent id, version,
# seq, agent)
AgentItem = tuple[int, float, float, int, int, int, "AgentState"]
_seq = itertools.count()
NOBODY: frozenset[int] = frozenset()  # shared: no agent excluded


class Conv:
    __slots__ = (
        "accept_due",
        "accepted",
        "agent_id",
        "arrival",
        "bucket",
        "channel",
        "enqueued_at",
        "excl_due",
        "excluded",
        "front",
        "id",
        "optional",
        "rank",
        "relax_due",
        "required",
        "responded",
        "rules",
        "skills",
        "sla_base",
        "sla_due",
        "stage",
        "state",
        "token",
        "waiting_since",
    )

    def __init__(
        self,
        cid: int,
        channel: str,
        rank: int,
        enqueued_at: float,
        skills: frozenset[str],
        optional: frozenset[str],
        rules: QueueRules,
        arrival: int,
    ) -> None:
        self.id = cid
        self.channel = channel
        self.rank = rank
        self.enqueued_at = enqueued_at  # orders the queue; kept across requeues
        self.waiting_since = enqueued_at  # relaxation clock; restarts on requeue
        self.skills = skills  # hard requirement (until an any_agent step)
        self.optional = optional  # required until relaxation drops them
        self.rules = rules
        self.arrival = arrival
        self.front = 1  # 0 = requeued ahead of fresh conversations of its priority
        self.stage = 0
        self.required: frozenset[str] = skills | optional if optional else skills
        self.state = WAITING
        self.token = 0
        self.bucket: Bucket | None = None
        self.agent_id: int | None = None
        self.accepted = False
        self.responded = False
        # agents not to offer it to (after no-accept): a set of its own once there is one
        self.excluded: Set[int] = NOBODY
        self.relax_due: float | None = None
        self.sla_base = enqueued_at  # the current level's first-response target counts from here
        self.sla_due: float | None = None
        self.accept_due: float | None = None
        self.excl_due: float | None = None

    def item(self) -> ConvItem:
        return (self.rank, self.front, self.enqueued_at, self.arrival, self.token, self)


class AgentState:
    __slots__ = (
        "assigned",
        "capacity",
        "eligible",
        "feeds",
        "id",
        "last_assigned",
        "last_at",
        "levels",
        "load",
        "presence",
        "registered",
        "skillset",
        "version",
    )

    def __init__(self, agent_id: int, levels: dict[str, int], capacity: dict[str, int]) -> None:
        self.id = agent_id
        self.levels = levels
        self.skillset = frozenset(levels)
        self.capacity = capacity
        self.presence = Presence.OFFLINE
        self.load: dict[str, int] = {}
        self.assigned: set[int] = set()
        self.last_assigned = 0.0
        self.last_at: dict[str, float] = {}  # channel -> last assignment ("idle since")
        # channel -> [(bucket, skill level for it)] for the buckets it qualifies for
        self.eligible: dict[str, list[tuple[Bucket, int]]] = {}
        # channel -> the same buckets alone, for one min() over their tops per decision
        self.feeds: dict[str, list[Bucket]] = {}
        # channel -> version, bumped on every change of that channel's load, and of presence,
        # skills or capacity; items in agent heaps are live while their version is current
        self.version: dict[str, int] = {}
        # channels pushed into their buckets at their current version (a bump removes one)
        self.registered: set[str] = set()

    def add_bucket(self, bucket: Bucket, level: int) -> None:
        """The agent qualifies for `bucket` (every skill it requires), at `level`."""
        self.eligible.setdefault(bucket.channel, []).append((bucket, level))
        self.feeds.setdefault(bucket.channel, []).append(bucket)

    def clear_buckets(self) -> None:
        self.eligible = {}
        self.feeds = {}

    def bump(self, channel: str | None = None) -> None:
        version = self.version
        if channel is not None:
            version[channel] = version.get(channel, 0) + 1
            self.registered.discard(channel)
            return
        for name in {*self.capacity, *self.load, *self.eligible}:
            version[name] = version.get(name, 0) + 1
        self.registered.clear()

    def room(self, channel: str) -> bool:
        return self.load.get(channel, 0) < self.capacity.get(channel, 0)

    def available(self, channel: str) -> bool:
        return self.presence is Presence.ONLINE and self.room(channel)

    def level_for(self, skills: frozenset[str]) -> int:
        levels = self.levels
        return sum(levels[s] for s in skills)


class Bucket:
    __slots__ = ("agent_limit", "agents", "channel", "convs", "live", "skills", "top")

    def __init__(self, channel: str, skills: frozenset[str]) -> None:
        self.channel = channel
        self.skills = skills
        self.convs: list[ConvItem] = []
        self.agents: list[AgentItem] = []
        self.live = 0  # waiting conversations really in this bucket
        self.agent_limit = 256  # compact the agent heap when it grows past this
        # the heap item of the best live conversation, EMPTY when none: kept current on
        # every push and drop, so an agent compares bucket tops without checking them
        self.top: ConvItem = EMPTY

    # -- conversations --------------------------------------------------------------------
    def push_conv(self, conv: Conv) -> None:
        conv.token = token = conv.token + 1
        conv.bucket = self
        self.live += 1
        item = (conv.rank, conv.front, conv.enqueued_at, conv.arrival, token, conv)
        heap = self.convs
        heappush(heap, item)
        if item < self.top:
            self.top = item
        if len(heap) > 64 and len(heap) > 3 * self.live:
            self.convs = [i for i in heap if i[5].token == i[4] and i[5].bucket is self]
            heapify(self.convs)

    def drop_conv(self, conv: Conv) -> None:
        conv.token += 1
        conv.bucket = None
        self.live -= 1
        if self.top[5] is conv:
            # the top is always the heap's first item (anything before it would be a
            # live conversation ordered first): drop it and the stale items behind it
            heap = self.convs
            heappop(heap)
            while heap:
                item = heap[0]
                if item[5].token == item[4] and item[5].bucket is self:
                    self.top = item
                    return
                heappop(heap)
            self.top = EMPTY

    def top_conv(self) -> Conv | None:
        heap = self.convs
        while heap:
            item = heap[0]
            conv = item[5]
            if conv.token == item[4] and conv.bucket is self:
                return conv
            heapq.heappop(heap)
        return None

    def top_conv_for(self, agent_id: int) -> Conv | None:
        """The best live conversation here that has not excluded this agent."""
        conv = self.top_conv()
        if conv is None or agent_id not in conv.excluded:
            return conv
        live = [i for i in self.convs if i[5].token == i[4] and i[5].bucket is self]
        for item in sorted(live):
            if agent_id not in item[5].excluded:
                return item[5]
        return None

    def live_convs(self) -> list[Conv]:
        return [i[5] for i in self.convs if i[5].token == i[4] and i[5].bucket is self]

    # -- agents ---------------------------------------------------------------------------
    def push_agent(self, agent: AgentState, level: int) -> None:
        channel = self.channel
        capacity = agent.capacity.get(channel, 0)
        ratio = agent.load.get(channel, 0) / capacity if capacity else 1.0
        item = (
            -level,
            ratio,
            agent.last_at.get(channel, 0.0),
            agent.id,
            agent.version.get(channel, 0),
            next(_seq),
            agent,
        )
        heapq.heappush(self.agents, item)
        if len(self.agents) > self.agent_limit:
            self.agents = [i for i in self.agents if _agent_live(i, channel)]
            heapq.heapify(self.agents)
            self.agent_limit = max(256, 2 * len(self.agents))

    def best_agent(self, excluded: Set[int]) -> AgentState | None:
        heap = self.agents
        channel = self.channel
        skipped: list[AgentItem] = []
        found = None
        while heap:
            item = heap[0]
            if not _agent_live(item, channel):
                heapq.heappop(heap)
                continue
            if item[3] in excluded:
                skipped.append(heapq.heappop(heap))
                continue
            found = item[6]
            break
        for item in skipped:
            heapq.heappush(heap, item)
        return found


def _agent_live(item: AgentItem, channel: str) -> bool:
    agent = item[6]
    return agent.version.get(channel, 0) == item[4] and agent.available(channel)


def describe(conv: Conv) -> dict[str, Any]:
    return {
        "conversation_id": conv.id,
        "channel": conv.channel,
        "required_skills": sorted(conv.required),
        "enqueued_at": conv.enqueued_at,
    }
