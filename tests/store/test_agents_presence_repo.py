"""The agents repository as the workspace, the routing API and the widget read it (rows,
names, presence, who is online) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from inbox.errors import NotFound
from inbox.store import agents
from inbox.store import schema as t
from inbox.types import Presence, Role
from tests.store import seed


async def test_from_row_reads_every_field(store):
    aid = await seed.agent(
        store,
        "Eve",
        role="supervisor",
        skills={"billing": 7},
        capacity={"email": 3, "chat": 2},
        teams=["sales"],
    )
    row = await store.read(
        lambda c: c.execute(sa.select(t.agents).where(t.agents.c.id == aid)).mappings().one()
    )
    got = agents.from_row(row)
    assert (got.id, got.name, got.email, got.role) == (
        aid,
        "Eve",
        "eve@example.com",
        Role.SUPERVISOR,
    )
    assert got.skills == {"billing": 7} and got.capacity == {"email": 3, "chat": 2}
    assert got.teams == ("sales",) and got.active


async def test_names_of_those_that_exist(store):
    a = await seed.agent(store, "Ann")
    b = await seed.agent(store, "Bob")
    assert await store.read(lambda c: agents.names(c, {a, b, 999})) == {a: "Ann", b: "Bob"}
    assert await store.read(lambda c: agents.names(c, set())) == {}


async def test_presence_is_stored_and_reports_a_change(store):
    aid = await seed.agent(store)
    assert await store.read(lambda c: agents.presence_of(c, aid)) == "offline"
    assert await store.write(lambda c: agents.set_presence(c, aid, Presence.ONLINE)) is True
    assert await store.read(lambda c: agents.presence_of(c, aid)) == "online"
    assert await store.write(lambda c: agents.set_presence(c, aid, Presence.ONLINE)) is False
    assert await store.read(lambda c: agents.presence_of(c, 999)) == "offline"


async def test_presence_of_no_active_agent_is_refused(store):
    gone = await seed.agent(store, "Gone", active=False)
    for agent_id in (gone, 999):
        with pytest.raises(NotFound):
            await store.write(lambda c, i=agent_id: agents.set_presence(c, i, Presence.AWAY))
    assert (await seed.row(store, t.agents, gone))["presence"] == "offline"


async def test_count_online_counts_active_online_agents(store):
    assert await store.read(agents.count_online) == 0
    await seed.agent(store, "Ann", presence="online")
    await seed.agent(store, "Bob", presence="online", active=False)
    await seed.agent(store, "Cy", presence="away")
    assert await store.read(agents.count_online) == 1


async def test_active_id_by_email_ignores_case_and_disabled_agents(store):
    ann = await seed.agent(store, "Ann", email="Ann@Example.com")
    await seed.agent(store, "Gone", active=False)
    assert await store.read(lambda c: agents.active_id_by_email(c, "ann@example.COM")) == ann
    assert await store.read(lambda c: agents.active_id_by_email(c, "gone@example.com")) is None
    assert await store.read(lambda c: agents.active_id_by_email(c, "nobody@example.com")) is None
