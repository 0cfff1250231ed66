"""One contract for every priority-queue backend (in-process and Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inbox.errors import QueueError, ValidationError
from inbox.queue import MemoryQueue, PriorityQueue, QueueEntry, open_queue

T0 = 1_700_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[PriorityQueue]:
    if request.param == "memory":
        q = open_queue("memory://")
    else:
        url = request.getfixturevalue("redis_url")
        q = open_queue(url)
    try:
        yield q
    finally:
        await q.clear()
        await q.close()


def entry(
    cid: int,
    priority: str = "normal",
    at: float = 0.0,
    channel: str = "chat",
    skills: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
) -> QueueEntry:
    return QueueEntry(cid, priority, T0 + at, channel, skills, optional)


async def ids(q: PriorityQueue) -> list[int]:
    return [p.entry.conversation_id for p in await q.list()]


async def test_orders_by_priority_then_wait_then_id(queue: PriorityQueue) -> None:
    await queue.push(entry(1, "low", at=0))
    await queue.push(entry(2, "normal", at=5))
    await queue.push(entry(3, "normal", at=1))
    await queue.push(entry(4, "urgent", at=9))
    await queue.push(entry(6, "high", at=3))
    await queue.push(entry(5, "high", at=3))  # same priority and time: lower id first
    assert await ids(queue) == [4, 5, 6, 3, 2, 1]
    assert await queue.count() == 6
    assert (await queue.peek()) == entry(4, "urgent", at=9)
    assert [p.position for p in await queue.list()] == [1, 2, 3, 4, 5, 6]
    assert [p.entry.conversation_id for p in await queue.list(limit=2)] == [4, 5]
    assert await queue.list(limit=0) == []


async def test_entry_round_trips_with_all_fields(queue: PriorityQueue) -> None:
    e = entry(7, "high", at=1.234, channel="email", skills=("french", "billing"), optional=("vip",))
    await queue.push(e)
    got = await queue.get(7)
    assert got == e
    assert got is not None and got.skills == ("billing", "french")
    assert got.optional_skills == ("vip",)
    assert got.enqueued_at == pytest.approx(T0 + 1.234)


async def test_push_is_an_upsert(queue: PriorityQueue) -> None:
    await queue.push(entry(1, "normal", at=0))
    await queue.push(entry(2, "normal", at=1, skills=("billing",)))
    # raising priority and changing skills moves it, without a duplicate
    await queue.push(entry(2, "urgent", at=1, skills=("tech",)))
    assert await ids(queue) == [2, 1]
    assert await queue.count() == 2
    assert await queue.claim(skills={"billing"}) == entry(1, "normal", at=0)
    assert await queue.claim(skills={"billing"}) is None
    assert await queue.claim(skills={"tech"}) == entry(2, "urgent", at=1, skills=("tech",))
    assert await queue.count() == 0


async def test_remove(queue: PriorityQueue) -> None:
    await queue.push(entry(1))
    await queue.push(entry(2, at=1))
    assert await queue.remove(1) is True
    assert await queue.remove(1) is False
    assert await queue.get(1) is None
    assert await ids(queue) == [2]
    assert await queue.claim() == entry(2, at=1)
    assert await queue.claim() is None


async def test_positions(queue: PriorityQueue) -> None:
    for cid, at in [(10, 3), (11, 1), (12, 2)]:
        await queue.push(entry(cid, at=at))
    assert await queue.position(11) == 1
    assert await queue.position(12) == 2
    assert await queue.position(10) == 3
    assert await queue.position(99) is None


async def test_claim_matches_skills_and_channels(queue: PriorityQueue) -> None:
    await queue.push(entry(1, "urgent", at=0, skills=("billing", "french")))
    await queue.push(entry(2, "high", at=0, channel="email", skills=("billing",)))
    await queue.push(entry(3, "normal", at=0, skills=("billing",)))
    await queue.push(entry(4, "low", at=0))
    # lacks french: skips the urgent one
    assert (await queue.claim(skills={"billing"}, channels={"chat"})).conversation_id == 3
    # no skills: only the entry that requires none
    assert (await queue.claim(skills=set(), channels={"chat", "email"})).conversation_id == 4
    assert await queue.claim(skills=set()) is None
    # optional skills are not matched by the queue
    await queue.push(entry(5, "low", at=1, optional=("vip",)))
    assert (await queue.claim(skills=set())).conversation_id == 5
    assert (await queue.claim(channels={"email"})).conversation_id == 2
    assert (await queue.claim(skills={"billing", "french", "x"})).conversation_id == 1
    assert await queue.count() == 0


async def test_clear(queue: PriorityQueue) -> None:
    for cid in range(5):
        await queue.push(entry(cid, skills=(f"s{cid % 2}",)))
    await queue.clear()
    assert await queue.count() == 0
    assert await queue.list() == []
    assert await queue.claim() is None
    await queue.push(entry(9))
    assert await ids(queue) == [9]


async def test_unknown_priority_is_rejected(queue: PriorityQueue) -> None:
    with pytest.raises(ValidationError, match="unknown priority 'asap'"):
        await queue.push(entry(1, "asap"))


async def test_concurrent_claims_never_share_an_entry(queue: PriorityQueue) -> None:
    n = 200
    for cid in range(n):
        await queue.push(
            entry(
                cid, ("urgent", "normal")[cid % 2], at=cid % 7, skills=(("a",), ("b",), ())[cid % 3]
            )
        )
    expected_order = await ids(queue)

    async def worker() -> list[int]:
        got = []
        while (e := await queue.claim(skills={"a", "b"})) is not None:
            got.append(e.conversation_id)
            await asyncio.sleep(0)
        return got

    results = await asyncio.gather(*(worker() for _ in range(8)))
    claimed = [cid for r in results for cid in r]
    assert sorted(claimed) == list(range(n))  # each exactly once
    # every worker saw entries in queue order
    for r in results:
        assert r == [cid for cid in expected_order if cid in set(r)]


async def test_custom_levels() -> None:
    q = MemoryQueue(levels=("p1", "p2"))
    await q.push(QueueEntry(1, "p2", T0, "sms"))
    await q.push(QueueEntry(2, "p1", T0 + 5, "sms"))
    assert [p.entry.conversation_id for p in await q.list()] == [2, 1]
    with pytest.raises(ValidationError):
        MemoryQueue(levels=("a", "a"))


def test_resolver_rejects_unknown_scheme() -> None:
    with pytest.raises(QueueError, match="use memory:// or redis://"):
        open_queue("kafka://x")
    assert isinstance(open_queue("memory://"), MemoryQueue)


async def test_two_redis_clients_claim_disjoint_sets(redis_url: str) -> None:
    """Two processes' worth of clients (separate connections) drain one queue."""
    a, b = open_queue(redis_url), open_queue(redis_url)
    try:
        for cid in range(100):
            await a.push(entry(cid, at=cid))

        async def drain(q: PriorityQueue) -> list[int]:
            out = []
            while (e := await q.claim()) is not None:
                out.append(e.conversation_id)
            return out

        ra, rb = await asyncio.gather(drain(a), drain(b))
        assert sorted(ra + rb) == list(range(100))
        assert not set(ra) & set(rb)
    finally:
        await a.clear()
        await a.close()
        await b.close()
