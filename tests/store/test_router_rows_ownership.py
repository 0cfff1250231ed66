"""The router's writes against an agent's acceptance (issue 17), on SQLite and PostgreSQL:
an offer's take-back loses to an accept, and every router write moves the case version on
(so a case change computed before it loses to it)."""

from __future__ import annotations

from inbox.store import router_rows as a
from inbox.store import schema as t
from tests.store import seed


async def _offer(store, *, accepted_at=None):
    ann = await seed.agent(store, "Ann", presence="online")
    who = await seed.contact(store)
    cid = await seed.conversation(
        store, who, assignee_id=ann, assigned_at=seed.at(1), accepted_at=accepted_at
    )
    return ann, cid


async def test_a_take_back_of_an_accepted_offer_is_refused(store):
    ann, cid = await _offer(store, accepted_at=seed.at(2))
    back = [a.Unassign(cid, ann, seed.at(3), a.ACCEPT_TIMEOUT)]
    assert await store.write(lambda c: a.persist(c, back, None)) == ([], {cid})
    row = await seed.row(store, t.conversations, cid)
    assert (row["assignee_id"], row["accepted_at"]) == (ann, seed.at(2))
    [conv] = (await store.read(a.snapshot)).assigned
    assert conv.accepted is True


async def test_a_take_back_of_an_offer_not_accepted_goes_through(store):
    ann, cid = await _offer(store)
    before = (await seed.row(store, t.conversations, cid))["version"]
    back = [a.Unassign(cid, ann, seed.at(3), a.ACCEPT_TIMEOUT)]
    assert await store.write(lambda c: a.persist(c, back, None)) == ([0], set())
    row = await seed.row(store, t.conversations, cid)
    assert (row["assignee_id"], row["version"]) == (None, before + 1)


async def test_other_unassigns_take_an_accepted_conversation(store):
    ann, cid = await _offer(store, accepted_at=seed.at(2))
    off = [a.Unassign(cid, ann, seed.at(3), "offline")]
    assert await store.write(lambda c: a.persist(c, off, None)) == ([0], set())
    row = await seed.row(store, t.conversations, cid)
    assert (row["assignee_id"], row["accepted_at"]) == (None, None)


async def test_an_assignment_is_an_offer_unless_taken(store):
    ann = await seed.agent(store, "Ann", presence="online")
    who = await seed.contact(store)
    offered = await seed.conversation(store, who, waiting_since=seed.at(0), accepted_at=seed.at(0))
    taken = await seed.conversation(store, who, waiting_since=seed.at(0))
    writes = [a.Assign(offered, ann, seed.at(5), "routed"),
              a.Assign(taken, ann, seed.at(6), "take_next", True)]  # fmt: skip
    assert await store.write(lambda c: a.persist(c, writes, None)) == ([0, 1], set())
    first = await seed.row(store, t.conversations, offered)
    second = await seed.row(store, t.conversations, taken)
    assert (first["accepted_at"], first["version"]) == (None, 1)
    assert (second["accepted_at"], second["assignee_id"]) == (seed.at(6), ann)
