"""The sign-in attempts repository (inbox.store.signins) on SQLite and PostgreSQL: attempts
are counted before they are allowed, atomically, so parallel attempts never pass the limit;
the rule is inbox.accounts.signin_throttle's."""

from __future__ import annotations

import asyncio

import pytest

from inbox.accounts import signin_throttle as th
from inbox.store import signins

POLICY = th.ThrottlePolicy(free_attempts=5, delay=10.0, max_delay=80.0, forget=3600.0)
NOW = 1_800_000_000.0


async def _reserve(store, keys, now=NOW, policy=POLICY):
    return await store.write(lambda c: signins.reserve(c, keys, policy, now=now))


async def _count(store, key):
    return await store.read(lambda c: signins.counted(c, key))


async def test_parallel_attempts_get_exactly_the_free_ones(store):
    keys = th.keys_for("ann@a.test", "203.0.113.7")
    # real transactions at once: PostgreSQL runs them on separate connections
    waits = await asyncio.gather(*(_reserve(store, keys) for _ in range(100)))
    assert sum(1 for w in waits if w == 0.0) == POLICY.free_attempts
    assert all(w == pytest.approx(POLICY.delay) for w in waits if w)
    assert await _count(store, keys[0]) == await _count(store, keys[1]) == 5


async def test_parallel_attempts_on_many_accounts_from_one_address(store):
    batches = [th.keys_for(f"user{i}@a.test", "203.0.113.8") for i in range(40)]
    waits = await asyncio.gather(*(_reserve(store, keys) for keys in batches))
    allowed = POLICY.address_free_attempts
    assert sum(1 for w in waits if w == 0.0) == allowed
    # a refused attempt counted nothing on its pair
    counts = [await _count(store, keys[0]) for keys in batches]
    assert sorted(counts) == [0] * (40 - allowed) + [1] * allowed


async def _waiting(store, keys, now):
    return await store.read(lambda c: signins.waiting(c, keys, POLICY, now=now))


async def test_waits_double_after_the_free_attempts_up_to_the_cap(store):
    keys = th.keys_for("ann@a.test", "203.0.113.9")
    now = NOW
    for _ in range(5):
        assert await _waiting(store, keys, now) == 0.0
        assert await _reserve(store, keys, now) == 0.0
    seen = []
    for _ in range(6):
        wait = await _reserve(store, keys, now)
        assert wait > 0 and await _waiting(store, keys, now) == wait
        assert await _reserve(store, keys, now + wait - 0.5) > 0  # not a moment early
        seen.append(round(wait))
        now += wait
        assert await _waiting(store, keys, now) == 0.0
        assert await _reserve(store, keys, now) == 0.0
    assert seen == [10, 20, 40, 80, 80, 80]


async def test_the_owner_on_another_address_is_not_throttled(store):
    attacker = th.keys_for("ann@a.test", "203.0.113.10")
    for _ in range(20):
        await _reserve(store, attacker)
    assert await _reserve(store, attacker) > 0
    owner = th.keys_for("ann@a.test", "198.51.100.4")
    assert await _reserve(store, owner) == 0.0


async def test_success_clears_the_pair_and_forgives_the_address_one_failure(store):
    keys = th.keys_for("ann@a.test", "203.0.113.11")
    for _ in range(4):  # three failures, then the attempt that succeeds
        await _reserve(store, keys)
    await store.write(lambda c: signins.succeeded(c, keys[0], keys[1], POLICY, now=NOW))
    assert await _count(store, keys[0]) == 0
    assert await _count(store, keys[1]) == 2  # its own attempt back, one failure forgiven
    await store.write(lambda c: signins.release(c, keys))
    assert await _count(store, keys[1]) == 1
    for _ in range(3):  # never below zero
        await store.write(lambda c: signins.succeeded(c, keys[0], keys[1], POLICY, now=NOW))
    assert await _count(store, keys[1]) == 0


async def test_a_quiet_key_starts_anew_and_is_deleted_on_a_success(store):
    keys = th.keys_for("ann@a.test", "203.0.113.12")
    for _ in range(8):
        await _reserve(store, keys)
    later = NOW + POLICY.forget + 1
    assert await _reserve(store, keys, later) == 0.0
    assert await _count(store, keys[0]) == 1
    other = th.keys_for("bob@b.test", "203.0.113.13")
    await _reserve(store, other)
    await store.write(lambda c: signins.succeeded(c, keys[0], keys[1], POLICY, now=later + 3600.5))
    assert await _count(store, other[0]) == 0  # forgotten: deleted


async def test_a_failed_check_moves_the_wait_to_its_end(store):
    keys = th.keys_for("ann@a.test", "203.0.113.21")
    for _ in range(POLICY.free_attempts):
        assert await _reserve(store, keys, NOW) == 0.0
    slow = NOW + 30  # the last check ended long after it was counted (a busy machine)
    await store.write(lambda c: signins.failed(c, keys, now=slow))
    assert await _waiting(store, keys, slow + 1) == POLICY.wait_after(POLICY.free_attempts) - 1
    assert await _reserve(store, keys, slow + 1) > 0  # still refused right after the check


async def test_a_wait_is_never_longer_than_the_rule_says(store):
    # a parallel attempt's failure recorded after this reader took its time: the wait left
    # is the rule's whole wait, not more (Retry-After 301 for a 300 s rule)
    keys = th.keys_for("ann@a.test", "203.0.113.22")
    for _ in range(POLICY.free_attempts):
        assert await _reserve(store, keys, NOW) == 0.0
    await store.write(lambda c: signins.failed(c, keys, now=NOW + 2))
    rule = POLICY.wait_after(POLICY.free_attempts)
    assert await _waiting(store, keys, NOW + 1) == rule
