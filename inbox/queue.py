"""The priority queue of waiting conversations: one interface, two backends.

Entries are ordered by priority level (index 0 of ``levels`` is the most urgent), then by
how long they have waited (oldest ``enqueued_at`` first), then by conversation id. Each
entry carries the skills an agent needs to take it; ``claim`` atomically removes and
returns the best entry whose required skills an agent has, on the channels it has room
for, so two consumers never get the same conversation.

    queue = open_queue("memory://")            # in-process, the embedded default
    queue = open_queue("redis://host:6379/0")  # shared by several processes
    await queue.push(QueueEntry(42, "high", time.time(), "chat", ("billing",)))
    entry = await queue.claim(skills={"billing", "french"}, channels={"chat"})

``optional_skills`` travel with an entry for the router's relaxation rules; the queue
itself matches on ``skills`` only. ``enqueued_at`` is compared at millisecond precision
by every backend.
"""

from __future__ import annotations

import abc
import heapq
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from inbox.config import DEFAULT_PRIORITIES
from inbox.errors import QueueError, ValidationError

__all__ = [
    "MemoryQueue",
    "PriorityQueue",
    "QueueEntry",
    "QueuePosition",
    "open_queue",
]


@dataclass(frozen=True, slots=True)
class QueueEntry:
    conversation_id: int
    priority: str
    enqueued_at: float  # epoch seconds; the wait starts here
    channel: str
    skills: tuple[str, ...] = ()  # required: an agent needs every one
    optional_skills: tuple[str, ...] = ()  # wanted first, dropped by relaxation rules

    def __post_init__(self) -> None:
        # one canonical form so that equal skill sets compare and bucket equal
        object.__setattr__(self, "skills", tuple(sorted(set(self.skills))))
        object.__setattr__(self, "optional_skills", tuple(sorted(set(self.optional_skills))))

    @property
    def enqueued_ms(self) -> int:
        return round(self.enqueued_at * 1000)

    def to_json(self) -> str:
        return json.dumps(
            [
                self.conversation_id,
                self.priority,
                self.enqueued_at,
                self.channel,
                list(self.skills),
                list(self.optional_skills),
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> QueueEntry:
        cid, priority, at, channel, skills, optional = json.loads(raw)
        return cls(int(cid), priority, float(at), channel, tuple(skills), tuple(optional))


@dataclass(frozen=True, slots=True)
class QueuePosition:
    position: int  # 1 = next in line
    entry: QueueEntry


class PriorityQueue(abc.ABC):
    """What every backend provides. All methods are coroutines; `claim` is atomic."""

    def __init__(self, levels: Sequence[str] = DEFAULT_PRIORITIES) -> None:
        if not levels or len(set(levels)) != len(levels):
            raise ValidationError("priority levels must be a non-empty list of distinct names")
        self.levels = tuple(levels)
        self._rank = {name: index for index, name in enumerate(self.levels)}

    def rank(self, priority: str) -> int:
        try:
            return self._rank[priority]
        except KeyError:
            raise ValidationError(
                f"unknown priority {priority!r}; levels are {list(self.levels)}",
                field="priority",
            ) from None

    def sort_key(self, entry: QueueEntry) -> tuple[int, int, int]:
        return (self.rank(entry.priority), entry.enqueued_ms, entry.conversation_id)

    @abc.abstractmethod
    async def push(self, entry: QueueEntry) -> None:
        """Add an entry, or replace the entry of the same conversation (upsert)."""

    @abc.abstractmethod
    async def remove(self, conversation_id: int) -> bool:
        """Take a conversation out of the queue; False when it was not waiting."""

    @abc.abstractmethod
    async def claim(
        self, skills: Iterable[str] | None = None, channels: Iterable[str] | None = None
    ) -> QueueEntry | None:
        """Atomically remove and return the best entry whose required skills are all in
        `skills` and whose channel is in `channels` (None: no restriction)."""

    @abc.abstractmethod
    async def get(self, conversation_id: int) -> QueueEntry | None: ...

    @abc.abstractmethod
    async def position(self, conversation_id: int) -> int | None:
        """1-based place in line, or None when not waiting."""

    @abc.abstractmethod
    async def list(self, limit: int | None = None) -> list[QueuePosition]:
        """The waiting entries in order, best first."""

    async def peek(self) -> QueueEntry | None:
        first = await self.list(1)
        return first[0].entry if first else None

    @abc.abstractmethod
    async def count(self) -> int: ...

    @abc.abstractmethod
    async def clear(self) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the in-process backend has none."""


class _Bucket:
    """Entries of one (channel, skill set), a heap with lazy deletion."""

    __slots__ = ("heap", "skills")

    def __init__(self, skills: frozenset[str]) -> None:
        self.skills = skills
        self.heap: list[tuple[tuple[int, int, int], QueueEntry]] = []


class MemoryQueue(PriorityQueue):
    """The in-process backend: buckets by (channel, skills), each a heap.

    A claim looks only at the top of the buckets the claimant qualifies for, so its cost
    grows with the number of distinct skill sets, not with the number waiting.
    """

    def __init__(self, levels: Sequence[str] = DEFAULT_PRIORITIES) -> None:
        super().__init__(levels)
        self._entries: dict[int, tuple[tuple[int, int, int], QueueEntry]] = {}
        self._buckets: dict[tuple[str, tuple[str, ...]], _Bucket] = {}

    def _valid(self, item: tuple[tuple[int, int, int], QueueEntry]) -> bool:
        return self._entries.get(item[1].conversation_id) is item

    def _top(self, bucket: _Bucket) -> tuple[tuple[int, int, int], QueueEntry] | None:
        heap = bucket.heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        return heap[0] if heap else None

    async def push(self, entry: QueueEntry) -> None:
        item = (self.sort_key(entry), entry)
        self._entries[entry.conversation_id] = item
        key = (entry.channel, entry.skills)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(frozenset(entry.skills))
        heapq.heappush(bucket.heap, item)
        if len(bucket.heap) > 64 and len(bucket.heap) > 2 * len(self._entries):
            bucket.heap = [i for i in bucket.heap if self._valid(i)]
            heapq.heapify(bucket.heap)

    async def remove(self, conversation_id: int) -> bool:
        return self._entries.pop(conversation_id, None) is not None

    async def claim(
        self, skills: Iterable[str] | None = None, channels: Iterable[str] | None = None
    ) -> QueueEntry | None:
        have = None if skills is None else frozenset(skills)
        where: Collection[str] | None = None if channels is None else set(channels)
        best: tuple[tuple[int, int, int], QueueEntry] | None = None
        for (channel, _), bucket in self._buckets.items():
            if where is not None and channel not in where:
                continue
            if have is not None and not bucket.skills <= have:
                continue
            top = self._top(bucket)
            if top is not None and (best is None or top[0] < best[0]):
                best = top
        if best is None:
            return None
        del self._entries[best[1].conversation_id]
        return best[1]

    async def get(self, conversation_id: int) -> QueueEntry | None:
        item = self._entries.get(conversation_id)
        return item[1] if item else None

    async def position(self, conversation_id: int) -> int | None:
        item = self._entries.get(conversation_id)
        if item is None:
            return None
        return 1 + sum(1 for other in self._entries.values() if other[0] < item[0])

    async def list(self, limit: int | None = None) -> list[QueuePosition]:
        items = self._entries.values()
        ordered = sorted(items) if limit is None else heapq.nsmallest(limit, items)
        return [QueuePosition(n, item[1]) for n, item in enumerate(ordered, start=1)]

    async def count(self) -> int:
        return len(self._entries)

    async def clear(self) -> None:
        self._entries.clear()
        self._buckets.clear()


def open_queue(
    url: str, levels: Sequence[str] = DEFAULT_PRIORITIES, **options: Any
) -> PriorityQueue:
    """The one place a queue backend is chosen: ``memory://`` or ``redis://…``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryQueue(levels)
    if scheme in {"redis", "rediss", "unix"}:
        try:
            from inbox.queue_redis import RedisQueue
        except ImportError as exc:  # pragma: no cover - redis is a core dependency today
            raise QueueError(
                f"the Redis queue backend needs the redis package ({exc}); "
                "run `pip install 'redis>=5.0'` or use queue url memory://"
            ) from exc
        return RedisQueue(url, levels, **options)
    raise QueueError(f"unknown queue backend {scheme!r} in {url!r}; use memory:// or redis://")
