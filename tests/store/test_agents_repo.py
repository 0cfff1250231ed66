"""The agents repository (inbox.store.agents) on SQLite and PostgreSQL: what is added is
read back, emails are unique once normalized, disabling and a new password are by email."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from inbox.errors import Conflict, NotFound
from inbox.store import agents
from inbox.store import schema as t
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


async def test_changing_a_password_ends_the_agents_sessions_only(store):
    ann = await _ann(store)
    bob = await store.write(lambda c: agents.add(c, "Bob", "bob@b.test", Role.AGENT, {}, {}))

    def sessions(conn, agent_id: int, n: int) -> None:
        now = datetime.now(UTC)
        for i in range(n):
            conn.execute(
                sa.insert(t.agent_sessions).values(
                    id_hash=f"{agent_id}-{i}", agent_id=agent_id, csrf_token="x",
                    created_at=now, last_seen_at=now, expires_at=now,
                )
            )  # fmt: skip

    await store.write(lambda c: (sessions(c, ann.id, 2), sessions(c, bob.id, 1)))
    ended = await store.call(agents.change_password, "ANN@example.test", "new-hash")
    assert ended == 2
    row = await store.read(
        lambda c: c.execute(sa.select(t.agents).where(t.agents.c.id == ann.id)).mappings().one()
    )
    assert row["password_hash"] == "new-hash" and row["password_changed_at"] is not None
    left = await store.read(lambda c: c.execute(sa.select(t.agent_sessions.c.agent_id)).all())
    assert [r.agent_id for r in left] == [bob.id]
    assert await store.call(agents.change_password, "ann@example.test", "again") == 0
    with pytest.raises(NotFound, match=r"nobody@x\.test"):
        await store.call(agents.change_password, "nobody@x.test", "h")
