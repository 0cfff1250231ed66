"""The router's mutable state: conversations, agents, and the buckets that index them.

A bucket holds the waiting conversations of one (channel, required skill set), as a heap
ordered by (priority rank, requeued-first, enqueued_at, arrival). Beside it, a heap of the
agents who qualify for the bucket and have room right now, ordered by (best skill level,
lowest load relative to capacity, longest idle). Both heaps delete lazily: an item is live
while its token (conversation) or version (agent) is the current one. A conversation's
item is one int that orders as the tuple (rank, front, enqueued_at, arrival, token) would
(`conv_key`): heap sifts and the comparison of bucket tops compare two ints instead of
two tuples (and a float in each), and an int is nothing the cyclic collector tracks. Its
low bits are the token, unique over the process; the router's `waiting` dict maps the
token of every live item to its conversation.
An agent keeps, per channel, the list of buckets whose skill set is a subset of its
skills, so a decision looks at a handful of heap tops and never scans all agents or all
conversations. The tops themselves live in one list shared by every bucket (`Tops`, a
slot per bucket), so that an agent reads all of its buckets' tops in one C call (`Pick`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import struct
from collections.abc import Callable, Set
from heapq import heapify, heappop, heappush
from operator import itemgetter
from typing import Any

from inbox.types import Presence
from routing.settings import QueueRules

WAITING = 0
ASSIGNED = 1

# conversation heap item: an int, see conv_key; the top of an empty bucket orders after
# every real item
ConvItem = int
EMPTY: ConvItem = 1 << 400
# the best live item of every bucket, at the bucket's slot; slot 0 stays EMPTY
Tops = list[ConvItem]
# an agent's buckets on one channel, as itemgetter(0, *their slots): their tops in one
# C call, as an agent about to pull compares the tops of all its buckets (cheaper than
# reading each bucket's top; bench/README.md). Slot 0 is in every pick so that it always
# returns a tuple, even for one bucket.
Pick = Callable[[Tops], tuple[ConvItem, ...]]
TOKEN_BITS = 48
TOKEN_MASK = (1 << TOKEN_BITS) - 1
_SIGN = 0x7FFF_FFFF_FFFF_FFFF
_pack_double = struct.Struct("<d").pack
_unpack_int64 = struct.Struct("<q").unpack


def conv_key(rank: int, front: int, enqueued_at: float, arrival: int, token: int) -> ConvItem:
    """One int ordered as (rank, front, enqueued_at, arrival, token): from the high bits,
    rank and front, enqueued_at's IEEE bits made monotonic (64), arrival (64), token (48)."""
    bits: int = _unpack_int64(_pack_double(enqueued_at + 0.0))[0]  # -0.0 sorts as 0.0
    if bits < 0:
        bits ^= _SIGN  # negative floats: larger magnitude, smaller key
    return ((((rank << 1 | front) << 64 | bits + (1 << 63)) << 64 | arrival) << 48) | token


# agent heap item: (-level, load/capacity, last assigned on the channel, agent id, version,
# seq, agent)
AgentItem = tuple[int, float, float, int, int, int, "AgentState"]
_seq = itertools.count()
_tokens = itertools.count(1)  # a conversation's token: 0 while in no bucket
NOBODY: frozenset[int] = frozenset()  # shared: no agent excluded
NO_SKILLS: frozenset[str] = frozenset()  # shared: no optional skills (no set per conversation)
# a conversation's relax_due, sla_due or accept_due when it has no such timer: a float, so
# that comparing a due to it is the interpreter's float comparison rather than a generic
# one; a timer at infinity would never fire either
NO_DUE = math.inf
# Presence.ONLINE looked up once: an enum member read from its class goes through
# EnumType.__getattr__'s slot hook each time
ONLINE = Presence.ONLINE


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
        responded: bool = False,
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
        self.responded = responded
        # agents not to offer it to (after no-accept): a set of its own once there is one
        self.excluded: Set[int] = NOBODY
        self.relax_due = NO_DUE
        self.sla_base = enqueued_at  # the current level's first-response target counts from here
        self.sla_due = NO_DUE
        self.accept_due = NO_DUE
        self.excl_due: float | None = None

    # `__init__` over a resolved conversation's object, for a new one (see Engine._spare)
    renew = __init__

    def item(self) -> ConvItem:
        return conv_key(self.rank, self.front, self.enqueued_at, self.arrival, self.token)


class Seat:
    """An agent on one channel: its load there, its capacity, when it last got one, and
    the pick of its buckets' tops there.

    One object per (agent, channel) rather than a dict per field keyed by channel: an
    assignment and a release read or write these, and a slot's attribute costs less
    than a dict's get or store."""

    __slots__ = ("capacity", "last_at", "load", "pick")

    def __init__(self, capacity: int, pick: Pick | None) -> None:
        self.load = 0
        self.capacity = capacity  # kept equal to the agent's capacity for the channel
        self.last_at = 0.0  # last assignment on the channel ("idle since")
        self.pick = pick  # kept equal to the agent's pick for the channel


NO_SEAT = Seat(0, None)  # read-only stand-in for a channel an agent never had a conversation on


class AgentState:
    __slots__ = (
        "assigned",
        "capacity",
        "eligible",
        "feeds",
        "has_room",
        "id",
        "last_assigned",
        "levels",
        "picks",
        "presence",
        "pulls",
        "registered",
        "seats",
        "skillset",
        "version",
    )

    def __init__(self, agent_id: int, levels: dict[str, int], capacity: dict[str, int]) -> None:
        self.id = agent_id
        self.levels = levels
        self.skillset = frozenset(levels)
        self.capacity = capacity
        self.presence = Presence.OFFLINE
        # channel -> its seat, made at the first assignment there (so in that order, which
        # is the order agent views list loads in)
        self.seats: dict[str, Seat] = {}
        self.assigned: set[int] = set()
        self.last_assigned = 0.0
        # channel -> [(bucket, skill level for it)] for the buckets it qualifies for
        self.eligible: dict[str, list[tuple[Bucket, int]]] = {}
        # channel -> the same buckets alone; and the pick of their tops
        self.feeds: dict[str, list[Bucket]] = {}
        self.picks: dict[str, Pick] = {}
        # channel -> version, bumped on every change of that channel's load while it is
        # registered, and of presence, skills or capacity; items in agent heaps are live
        # while their version is current
        self.version: dict[str, int] = {}
        # channels pushed into their buckets at their current version (a bump removes one)
        self.registered: set[str] = set()
        # channels where load < capacity, kept by every change of either; and the picks of
        # those channels: settling an agent looks at these alone (usually none, or the one
        # channel a resolve just freed)
        self.has_room: set[str] = set()
        self.pulls: dict[str, Pick] = {}
        self.recount_room()

    def add_bucket(self, bucket: Bucket, level: int) -> None:
        """The agent qualifies for `bucket` (every skill it requires), at `level`."""
        channel = bucket.channel
        self.eligible.setdefault(channel, []).append((bucket, level))
        feed = self.feeds.setdefault(channel, [])
        feed.append(bucket)
        self.picks[channel] = pick = itemgetter(0, *(b.slot for b in feed))
        if channel in self.has_room:
            self.pulls[channel] = pick
        seat = self.seats.get(channel)
        if seat is not None:
            seat.pick = pick

    def clear_buckets(self) -> None:
        self.eligible = {}
        self.feeds = {}
        self.picks = {}
        self.pulls = {}
        for seat in self.seats.values():
            seat.pick = None

    def bump(self, channel: str | None = None) -> None:
        """Retire this agent's items in the agent heaps (of `channel`, or of every one).

        Items at the current version exist only for a channel in `registered`: a channel
        that is not needs no bump (its older items are dead already)."""
        version = self.version
        if channel is not None:
            if channel in self.registered:
                self.registered.discard(channel)
                version[channel] = version.get(channel, 0) + 1
            return
        for name in {*self.capacity, *self.seats, *self.eligible}:
            version[name] = version.get(name, 0) + 1
        self.registered.clear()

    def recount_room(self) -> None:
        """After a change of capacity (load changes keep `has_room` themselves)."""
        capacity, seats, picks = self.capacity, self.seats, self.picks
        for channel, seat in seats.items():
            seat.capacity = capacity.get(channel, 0)
        self.has_room = {c for c, room in capacity.items() if seats.get(c, NO_SEAT).load < room}
        self.pulls = {c: picks[c] for c in self.has_room if c in picks}

    def seat(self, channel: str) -> Seat:
        """The agent's seat on `channel`, made at its first assignment there."""
        seat = self.seats.get(channel)
        if seat is None:
            seat = Seat(self.capacity.get(channel, 0), self.picks.get(channel))
            self.seats[channel] = seat
        return seat

    def loads(self) -> dict[str, int]:
        """channel -> number of conversations, for the channels with any."""
        return {channel: seat.load for channel, seat in self.seats.items() if seat.load}

    def room(self, channel: str) -> bool:
        return channel in self.has_room

    def available(self, channel: str) -> bool:
        return self.presence is ONLINE and self.room(channel)

    def level_for(self, skills: frozenset[str]) -> int:
        levels = self.levels
        return sum(levels[s] for s in skills)


class Bucket:
    __slots__ = (
        "agent_limit",
        "agents",
        "channel",
        "convs",
        "live",
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
        bits = _unpack_int64(_pack_double(conv.enqueued_at + 0.0))[0]
        if bits < 0:
            bits ^= _SIGN
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


def describe(conv: Conv) -> dict[str, Any]:
    return {
        "conversation_id": conv.id,
        "channel": conv.channel,
        "required_skills": sorted(conv.required),
        "enqueued_at": conv.enqueued_at,
    }
