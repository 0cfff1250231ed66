"""inbox.store.holders on SQLite and PostgreSQL: who holds a conversation, by name."""

from __future__ import annotations

import pytest

from inbox.errors import NotFound
from inbox.store import holders
from tests.store import seed


async def test_the_holder_is_named_with_the_offer_and_its_acceptance(store):
    ann = await seed.agent(store, "Ann")
    who = await seed.contact(store)
    offered = await seed.conversation(store, who, assignee_id=ann, assigned_at=seed.at(1))
    taken = await seed.conversation(
        store, who, assignee_id=ann, assigned_at=seed.at(1), accepted_at=seed.at(2)
    )
    waiting = await seed.conversation(store, who, waiting_since=seed.at(0))
    got = await store.read(lambda c: holders.holder(c, offered))
    assert got == holders.Holder(ann, "Ann", seed.at(1), None)
    assert (await store.read(lambda c: holders.holder(c, taken))).accepted_at == seed.at(2)
    assert await store.read(lambda c: holders.holder(c, waiting)) == (None, None, None, None)
    with pytest.raises(NotFound):
        await store.read(lambda c: holders.holder(c, 999))
