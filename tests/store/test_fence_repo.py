"""The router's fence (inbox.store.fence) on SQLite and PostgreSQL: the highest leader
token is kept, an older leader's claim and checks fail."""

from __future__ import annotations

import pytest

from inbox.errors import Fenced
from inbox.store import fence


async def test_the_highest_token_holds_the_fence(store):
    assert await store.read(fence.current) == 0
    assert await store.write(lambda c: fence.claim(c, 5)) is True
    assert await store.write(lambda c: fence.claim(c, 5)) is True  # its own token again
    assert await store.write(lambda c: fence.claim(c, 4)) is False  # an older leader
    assert await store.read(fence.current) == 5
    assert await store.write(lambda c: fence.claim(c, 12)) is True  # compared as numbers
    assert await store.read(fence.current) == 12


async def test_only_the_current_token_passes_the_check(store):
    await store.write(lambda c: fence.check(c, None))  # no leader lease: nothing to check
    with pytest.raises(Fenced):  # no token recorded yet
        await store.write(lambda c: fence.check(c, 1))
    await store.write(lambda c: fence.claim(c, 3))
    await store.write(lambda c: fence.check(c, 3))
    await store.write(lambda c: fence.claim(c, 4))
    with pytest.raises(Fenced, match="token 3"):
        await store.write(lambda c: fence.check(c, 3))
