"""The router lease against a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from routing.lease import RedisLease


@pytest.fixture
async def make_lease(redis_url: str) -> AsyncIterator[Callable[..., RedisLease]]:
    made: list[RedisLease] = []

    def make(holder: str, ttl: float = 0.5) -> RedisLease:
        lease = RedisLease(redis_url, holder, ttl=ttl)
        made.append(lease)
        return lease

    yield make
    for lease in made:
        await lease.close()


async def test_only_one_holder_at_a_time(make_lease: Callable[..., RedisLease]) -> None:
    a, b = make_lease("a"), make_lease("b")
    token = await a.acquire()
    assert token is not None and a.held
    assert await b.acquire() is None and not b.held
    assert await a.current() == (token, "a")
    assert await a.renew() is True


async def test_release_lets_standby_take_over_with_higher_token(
    make_lease: Callable[..., RedisLease],
) -> None:
    a, b = make_lease("a", ttl=30), make_lease("b", ttl=30)
    first = await a.acquire()
    await a.release()
    second = await b.acquire()
    assert first is not None and second is not None and second > first


async def test_expired_leader_is_replaced_and_its_renew_fails(
    make_lease: Callable[..., RedisLease],
) -> None:
    a, b = make_lease("a", ttl=0.3), make_lease("b", ttl=5)
    first = await a.acquire()
    await asyncio.sleep(0.45)  # a "pauses" past its ttl
    second = await b.acquire()
    assert first is not None and second is not None and second > first
    assert await a.renew() is False  # stale leader: compare-and-extend refuses
    assert not a.held
    await a.release()  # a no-op: must not delete b's lease
    assert await b.current() == (second, "b")
    assert await b.renew() is True


async def test_stale_release_does_not_delete_new_lease(
    make_lease: Callable[..., RedisLease],
) -> None:
    a, b = make_lease("a", ttl=0.2), make_lease("b", ttl=5)
    await a.acquire()
    token_a = a.token
    await asyncio.sleep(0.3)
    await b.acquire()
    a.token = token_a  # a still believes it holds the lease
    await a.release()
    assert (await b.current())[1] == "b"  # type: ignore[index]


async def test_run_loop_standby_takes_over_after_leader_dies(
    make_lease: Callable[..., RedisLease],
) -> None:
    ttl = 0.6
    a, b = make_lease("a", ttl=ttl), make_lease("b", ttl=ttl)
    log: list[tuple[str, str, int | None, float]] = []

    def elected(name: str) -> Callable[[int], object]:
        async def cb(token: int) -> None:
            log.append((name, "elected", token, time.monotonic()))

        return cb

    def lost(name: str) -> Callable[[], object]:
        async def cb() -> None:
            log.append((name, "lost", None, time.monotonic()))

        return cb

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(a.run(elected("a"), lost("a"), stop_a))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    task_b = asyncio.create_task(b.run(elected("b"), lost("b"), stop_b))  # type: ignore[arg-type]
    await asyncio.sleep(2 * ttl)  # a keeps renewing: b stays on standby
    assert [e[:2] for e in log] == [("a", "elected")]
    # a dies without releasing (crash): cancel its loop and forget its token
    a.token = None
    task_a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_a
    died = time.monotonic()
    for _ in range(50):
        if any(e[0] == "b" for e in log):
            break
        await asyncio.sleep(0.05)
    b_elected = [e for e in log if e[0] == "b" and e[1] == "elected"]
    assert b_elected, log
    assert b_elected[0][2] > log[0][2]  # higher fencing token
    assert b_elected[0][3] - died < ttl + ttl / 3 + 0.3  # within ttl + one retry interval
    stop_b.set()
    await task_b
    assert log[-1][:2] == ("b", "lost")  # released on shutdown
    assert await b.current() is None
