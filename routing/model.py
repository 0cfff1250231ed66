"""The router's mutable state: conversations (`Conv`), agents (`AgentState`) and each
agent's seat per channel (`Seat`). The buckets that index them are in `routing.bucket`.

An agent keeps, per channel, the list of buckets whose skill set is a subset of its
skills, so a decision looks at a handful of heap tops and never scans all agents or all
conversations. The tops themselves live in one list shared by every bucket (`Tops`, a
slot per bucket), so that an agent reads all of its buckets' tops in one C call (`Pick`).
"""

from __future__ import annotations

import math
from collections.abc import Set
from operator import itemgetter
from typing import TYPE_CHECKING

from inbox.types import Presence
from routing.keys import ConvItem, Pick, conv_key
from routing.settings import QueueRules

if TYPE_CHECKING:
    from routing.bucket import Bucket

WAITING = 0
ASSIGNED = 1
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
        feed = self.feeds.setdefault(channel, [])
        feed.append(bucket)
        if bucket.pull_only:  # taken on request only ("take next"): never pushed or pulled
            return
        self.eligible.setdefault(channel, []).append((bucket, level))
        pushed = [b.slot for b in feed if not b.pull_only]
        self.picks[channel] = pick = itemgetter(0, *pushed)
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
