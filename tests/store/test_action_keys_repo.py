"""The action keys repository (inbox.store.action_keys) on SQLite and PostgreSQL: an
action runs once per key and agent, its answer is stored in the same transaction, a key
reused for another action is refused, old keys are dropped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inbox.errors import Conflict
from inbox.store import action_keys, agents, tokens
from inbox.types import Role

ACTION = "POST /api/conversations/1/reply"


async def _agent(store, email: str = "ann@a.test") -> int:
    agent = await store.write(lambda c: agents.add(c, "Ann", email, Role.AGENT, {}, {}))
    return agent.id


async def test_once_runs_the_action_once_per_key(store):
    agent_id = await _agent(store)
    runs: list[int] = []

    def act(conn) -> dict:
        runs.append(1)
        tokens.create(conn, f"made-{len(runs)}")  # the action's own write, same transaction
        return {"done": len(runs)}

    first = await store.write(lambda c: action_keys.once(c, agent_id, "k1", ACTION, act))
    again = await store.write(lambda c: action_keys.once(c, agent_id, "k1", ACTION, act))
    assert first == ({"done": 1}, True) and again == ({"done": 1}, False)
    assert [i.scope.name for i in await store.read(tokens.list_all)] == ["made-1"]
    assert await store.read(lambda c: action_keys.recall(c, agent_id, "k1", ACTION)) == {"done": 1}


async def test_a_failed_action_stores_no_key(store):
    agent_id = await _agent(store)

    def fails(conn) -> dict:
        tokens.create(conn, "half-done")
        raise Conflict("refused")

    with pytest.raises(Conflict, match="refused"):
        await store.write(lambda c: action_keys.once(c, agent_id, "k", ACTION, fails))
    assert await store.read(lambda c: action_keys.recall(c, agent_id, "k", ACTION)) is None
    assert await store.read(tokens.list_all) == []  # rolled back with it


async def test_a_key_is_the_agents_own_and_names_one_action(store):
    ann, bob = await _agent(store), await _agent(store, "bob@b.test")
    assert await store.read(lambda c: action_keys.recall(c, ann, "k", ACTION)) is None
    await store.write(lambda c: action_keys.keep(c, ann, "k", ACTION, {"n": 1}))
    assert await store.read(lambda c: action_keys.recall(c, bob, "k", ACTION)) is None
    with pytest.raises(Conflict, match="another action"):
        await store.read(lambda c: action_keys.recall(c, ann, "k", "POST /other"))
    bobs = await store.write(lambda c: action_keys.once(c, bob, "k", ACTION, lambda _: {"n": 2}))
    assert bobs == ({"n": 2}, True)


async def test_keeping_a_key_drops_the_agents_keys_older_than_keep(store):
    agent_id = await _agent(store)
    long_ago = datetime.now(UTC) - action_keys.KEEP * 2
    await store.write(lambda c: action_keys.keep(c, agent_id, "old", ACTION, {}, long_ago))
    assert await store.read(lambda c: action_keys.recall(c, agent_id, "old", ACTION)) == {}
    await store.write(lambda c: action_keys.keep(c, agent_id, "new", ACTION, {"x": [1]}))
    assert await store.read(lambda c: action_keys.recall(c, agent_id, "old", ACTION)) is None
    assert await store.read(lambda c: action_keys.recall(c, agent_id, "new", ACTION)) == {"x": [1]}
