"""The agents repository (inbox.store.agents) on SQLite and PostgreSQL: what is added is
read back, emails are unique once normalized, disabling is by email."""

from __future__ import annotations

import pytest

from inbox.errors import Conflict, NotFound
from inbox.store import agents
from inbox.types import Agent, Role


async def _ann(store) -> Agent:
    return await store.call(
        agents.add,
        "Ann",
        "Ann@Example.TEST",
        Role.SUPERVISOR,
        {"billing": 7},
        {"chat": 3},
        ["default", "vip"],
        "hashed",
    )


async def test_an_added_agent_reads_back_as_added(store):
    ann = await _ann(store)
    assert ann == Agent(
        ann.id, "Ann", "ann@example.test", Role.SUPERVISOR, {"billing": 7}, {"chat": 3},
        True, ("default", "vip"),
    )  # fmt: skip
    assert await store.read(lambda c: agents.get(c, ann.id)) == ann


async def test_an_email_has_one_agent_whatever_its_case(store):
    await _ann(store)
    with pytest.raises(Conflict, match=r"ann@example\.test"):
        await store.write(
            lambda c: agents.add(c, "Other", " ANN@example.test ", Role.AGENT, {}, {})
        )
    assert [a.name for a in await store.read(agents.list_all)] == ["Ann"]


async def test_an_unknown_agent_is_not_found(store):
    with pytest.raises(NotFound):
        await store.read(lambda c: agents.get(c, 424242))
    with pytest.raises(NotFound):
        await store.call(agents.disable, "nobody@example.test")


async def test_disabling_keeps_the_agent_listed_only_when_asked(store):
    ann = await _ann(store)
    bob = await store.write(lambda c: agents.add(c, "Bob", "bob@b.test", Role.AGENT, {}, {}))
    assert bob.teams == () and bob.active
    await store.call(agents.disable, "BOB@b.test")
    every = await store.read(agents.list_all)
    assert [(a.id, a.active) for a in every] == [(ann.id, True), (bob.id, False)]
    active = await store.read(lambda c: agents.list_all(c, include_inactive=False))
    assert [a.id for a in active] == [ann.id]
    assert (await store.read(lambda c: agents.get(c, bob.id))).active is False
