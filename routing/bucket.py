"""A bucket: the waiting conversations of one (channel, required skill set), and the
agents who could take them.

The conversations are a heap ordered by (priority rank, requeued-first, enqueued_at,
arrival), of ints (`routing.keys.conv_key`). Beside it, a heap of the agents who qualify
for the bucket and have room right now, ordered by (best skill level, lowest load
relative to capacity, longest idle). Both heaps delete lazily: an item is live while its
token (conversation) or version (agent) is the current one. Every bucket keeps its best
live item at its slot of the router's shared `Tops`, which agents compare.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Set
from heapq import heapify, heappop, heappush

from routing.keys import EMPTY, SIGN_BITS, TOKEN_MASK, ConvItem, Tops, pack_double, unpack_int64
from routing.model import NO_SEAT, AgentState, Conv

# agent heap item: (-level, load/capacity, last assigned on the channel, agent id, version,
# seq, agent)
AgentItem = tuple[int, float, float, int, int, int, AgentState]
_seq = itertools.count()
_tokens = itertools.count(1)  # a conversation's token: 0 while in no bucket


class Bucket:
    __slots__ = (
        "agent_limit",
        "agents",
        "channel",
        "convs",
        "live",
        "pull_only",
        "skills",
        "slot",
        "tops",
        "waiting",
    )

    def __init__(
        self, channel: str, skills: frozenset[str], waiting: dict[int, Conv], tops: Tops
    ) -> None:
        self.channel = channel
        self.skills = skills
        self.waiting = waiting  # token -> conversation, of every live item: the router's
        self.convs: list[ConvItem] = []
        self.agents: list[AgentItem] = []
        self.live = 0  # waiting conversations really in this bucket
        # of a pull-only inbox: agents take from it on request alone (never offered)
        self.pull_only = False
        self.agent_limit = 256  # compact the agent heap when it grows past this
        # tops[slot]: the heap item of the best live conversation, EMPTY when none: kept
        # current on every push and drop, so an agent compares bucket tops without
        # checking them
        self.tops = tops  # the router's
        self.slot = len(tops)
        tops.append(EMPTY)

    # -- conversations --------------------------------------------------------------------
    def push_conv(self, conv: Conv) -> None:
        conv.token = token = next(_tokens)
        conv.bucket = self
        self.live += 1
        self.waiting[token] = conv
        # conv_key, inline: once per decision; + rather than | to join fields whose bits do
        # not overlap, as the interpreter specializes + on ints
        bits = unpack_int64(pack_double(conv.enqueued_at + 0.0))[0]
        if bits < 0:
            bits ^= SIGN_BITS
        rank = conv.rank
        high = ((rank + rank + conv.front) << 64) + bits + (1 << 63)
        item = (((high << 64) + conv.arrival) << 48) + token
        heappush(self.convs, item)
        tops, slot = self.tops, self.slot
        if item < tops[slot]:
            tops[slot] = item

    def drop_conv(self, conv: Conv) -> None:
        token = conv.token
        conv.token = 0
        conv.bucket = None
        self.live -= 1
        waiting = self.waiting
        del waiting[token]
        tops, slot = self.tops, self.slot
        if tops[slot] & TOKEN_MASK != token:
            # its item stays behind in the heap, dead; rebuild once they outnumber the live
            heap = self.convs
            if len(heap) > 64 and len(heap) > 3 * self.live:
                self.convs = self._live_items()
                heapify(self.convs)
        else:
            # the top is always the heap's first item (anything before it would be a
            # live conversation ordered first): drop it and the dead items behind it
            heap = self.convs
            heappop(heap)
            while heap:
                item = heap[0]
                if item & TOKEN_MASK in waiting:
                    tops[slot] = item
                    return
                heappop(heap)
            tops[slot] = EMPTY

    def _live_items(self) -> list[ConvItem]:
        waiting = self.waiting
        return [i for i in self.convs if i & TOKEN_MASK in waiting]

    def top_conv(self) -> Conv | None:
        heap, waiting = self.convs, self.waiting
        while heap:
            conv = waiting.get(heap[0] & TOKEN_MASK)
            if conv is not None:
                return conv
            heapq.heappop(heap)
        return None

    def top_conv_for(self, agent_id: int) -> Conv | None:
        """The best live conversation here that has not excluded this agent."""
        conv = self.top_conv()
        if conv is None or agent_id not in conv.excluded:
            return conv
        waiting = self.waiting
        for item in sorted(self._live_items()):
            conv = waiting[item & TOKEN_MASK]
            if agent_id not in conv.excluded:
                return conv
        return None

    # -- agents ---------------------------------------------------------------------------
    def push_agent(self, agent: AgentState, level: int) -> None:
        channel = self.channel
        capacity = agent.capacity.get(channel, 0)
        seat = agent.seats.get(channel, NO_SEAT)
        ratio = seat.load / capacity if capacity else 1.0
        item = (
            -level,
            ratio,
            seat.last_at,
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
