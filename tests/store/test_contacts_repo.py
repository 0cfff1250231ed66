"""The contacts repository on SQLite and PostgreSQL: what is read back, merges, notes,
follow-up addresses, opt-outs, and what is refused."""

from __future__ import annotations

import pytest

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import contacts
from inbox.store import schema as t
from inbox.types import Identity, IdentityKind
from tests.store import seed


async def test_get_reads_the_contact_with_its_identities_in_order(store):
    cid = await seed.contact(
        store,
        "Ann",
        [("email", "ann@example.com"), ("phone", "+15550100")],
        attributes={"plan": "gold"},
        tags=["vip"],
    )
    got = await store.read(lambda c: contacts.get(c, cid))
    assert got.id == cid and got.name == "Ann"
    assert got.identities == (
        Identity(IdentityKind.EMAIL, "ann@example.com", False),
        Identity(IdentityKind.PHONE, "+15550100", False),
    )
    assert got.attributes == {"plan": "gold"} and got.tags == ("vip",)
    assert got.created_at == seed.T0 and got.created_at.tzinfo is not None
    assert got.merged_into is None
    with pytest.raises(NotFound):
        await store.read(lambda c: contacts.get(c, cid + 100))


async def test_get_many_reads_those_that_exist(store):
    a = await seed.contact(store, "Ann", [("email", "a@x")])
    b = await seed.contact(store, None)
    got = await store.read(lambda c: contacts.get_many(c, {b, a, 999}))
    assert sorted(got) == [a, b]
    assert got[a].identities[0].value == "a@x"
    assert got[b].name is None and got[b].identities == ()
    assert await store.read(lambda c: contacts.get_many(c, [])) == {}


async def test_notes_are_read_and_replaced(store):
    cid = await seed.contact(store)
    assert await store.read(lambda c: contacts.notes_of(c, cid)) == ""
    await store.write(lambda c: contacts.set_notes(c, cid, "prefers mail"))
    assert await store.read(lambda c: contacts.notes_of(c, cid)) == "prefers mail"
    with pytest.raises(NotFound):
        await store.write(lambda c: contacts.set_notes(c, cid + 1, "x"))
    with pytest.raises(NotFound):
        await store.read(lambda c: contacts.notes_of(c, cid + 1))


async def test_merge_moves_identities_conversations_and_authorship(store):
    target = await seed.contact(store, None, [("email", "t@x")], tags=["a"], notes="one")
    source = await seed.contact(
        store, "Sam", [("phone", "+15550101")], tags=["b", "a"], notes="two"
    )
    conv = await seed.conversation(store, source)
    msg = await seed.message(store, conv, author_id=source)
    moved = await store.write(lambda c: contacts.merge(c, source, target))
    assert moved == [conv]
    merged = await store.read(lambda c: contacts.get(c, target))
    assert merged.name == "Sam" and merged.tags == ("a", "b")
    assert {i.value for i in merged.identities} == {"t@x", "+15550101"}
    assert await store.read(lambda c: contacts.notes_of(c, target)) == "one\n\ntwo"
    assert (await seed.row(store, t.conversations, conv))["contact_id"] == target
    assert (await seed.row(store, t.messages, msg))["author_id"] == target
    assert (await store.read(lambda c: contacts.get(c, source))).merged_into == target
    folded = await store.read(lambda c: contacts.merged_into(c, target))
    assert [f.id for f in folded] == [source]
    assert await store.read(lambda c: contacts.merged_into(c, source)) == []


async def test_merge_refuses_itself_the_missing_and_the_merged(store):
    a = await seed.contact(store)
    b = await seed.contact(store)
    other = await seed.contact(store)
    with pytest.raises(ValidationError):
        await store.write(lambda c: contacts.merge(c, a, a))
    with pytest.raises(NotFound):
        await store.write(lambda c: contacts.merge(c, a, 999))
    await store.write(lambda c: contacts.merge(c, a, b))
    with pytest.raises(Conflict):
        await store.write(lambda c: contacts.merge(c, a, other))
    with pytest.raises(Conflict):
        await store.write(lambda c: contacts.merge(c, other, a))


async def test_merges_are_followed_to_the_contact_that_lives_on(store):
    last = await seed.contact(store, "Ann")
    middle = await seed.contact(store, None, merged_into=last)
    first = await seed.contact(store, None, [("visitor", "v-1")], merged_into=middle)
    unnamed = await seed.contact(store, None)
    assert await store.read(lambda c: contacts.follow_merges(c, first)) == (last, True)
    assert await store.read(lambda c: contacts.follow_merges(c, unnamed)) == (unnamed, False)
    assert await store.read(lambda c: contacts.follow_merges(c, 999)) == (999, False)
    found = await store.read(lambda c: contacts.of_identity(c, IdentityKind.VISITOR, "v-1"))
    assert found == last
    assert await store.read(lambda c: contacts.of_identity(c, IdentityKind.VISITOR, "v-2")) is None


async def test_a_followup_address_is_an_attribute_beside_the_others(store):
    cid = await seed.contact(store, attributes={"plan": "gold"})
    await store.write(lambda c: contacts.save_followup(c, cid, "ann@example.com", None))
    got = await store.read(lambda c: contacts.get(c, cid))
    assert got.attributes == {"plan": "gold", "email_for_followup": "ann@example.com"}
    assert got.identities == ()  # not an identity: nobody verified it
    await store.write(lambda c: contacts.save_followup(c, cid, "new@example.com", False))
    got = await store.read(lambda c: contacts.get(c, cid))
    assert got.attributes["email_for_followup"] == "new@example.com"
    assert got.attributes["chat_consent"] is False


async def test_opt_outs_are_kept_on_the_phone_identity(store):
    await seed.contact(store, identities=[("phone", "+15550102"), ("email", "p@x")])
    assert await store.read(lambda c: contacts.is_opted_out(c, "+15550102")) is False
    await store.write(lambda c: contacts.set_opted_out(c, "+15550102", True))
    assert await store.read(lambda c: contacts.is_opted_out(c, "+15550102")) is True
    await store.write(lambda c: contacts.set_opted_out(c, "+15550102", False))
    assert await store.read(lambda c: contacts.is_opted_out(c, "+15550102")) is False
    # an unknown number: never opted out, and setting it stores nothing
    await store.write(lambda c: contacts.set_opted_out(c, "+15550199", True))
    assert await store.read(lambda c: contacts.is_opted_out(c, "+15550199")) is False
