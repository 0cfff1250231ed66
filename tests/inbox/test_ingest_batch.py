"""A batch ingested in one transaction stores exactly what ingesting its messages one at a
time stores. A batch answers its lookups (redeliveries, contacts, latest conversations)
from a few set-based reads made up front (on PostgreSQL after locking all its senders in
one statement) and kept current by its own writes; this differential test holds that to
the one-statement-per-lookup path, on both store backends."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from inbox.ingest import IngestSettings, prepare
from inbox.store.backends import open_store
from inbox.store.fastsql import Sql
from inbox.store.ingest_writes import ingest_batch, ingest_in
from inbox.types import Channel, IdentityKind, InboundMessage

SETTINGS = IngestSettings()
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def msg(external_id: str, sender: str, channel: Channel = Channel.EMAIL, **kw) -> InboundMessage:
    return InboundMessage(
        channel=channel,
        external_id=external_id,
        sender=sender,
        text=kw.pop("text", f"text of {external_id}"),
        received_at=T0,
        **kw,
    )


SEED = [
    msg("<s1>", "ann@example.com"),
    msg("<s2>", "bob@example.com"),
    msg("<s3>", "carl@example.com"),
    msg("<s4>", "dora@example.com"),
]
LATER = msg("<s5>", "carl@example.com")  # carl's second conversation (the first is closed)


def batch(carl_token: str) -> list[InboundMessage]:
    return [
        msg("<b1>", "ann@example.com", display_name="Ann"),  # names the contact
        msg("<b2>", "Ann@Example.com", display_name="Ann Other"),  # named already
        msg("<b3>", "bob@example.com"),  # reopens bob's resolved conversation
        msg("<b4>", "dan@example.com"),  # new contact, new conversation
        msg("<b5>", "dan@example.com"),  # ... and its second message threads there
        msg("<b1>", "ann@example.com", text="again"),  # redelivered within the batch
        msg("<s3>", "carl@example.com"),  # redelivery of a stored message
        msg("<b6>", "dora@example.com"),  # dora's conversation is closed: a new one
        msg("<b7>", "ann@example.com", channel=Channel.API),  # same contact, other channel
        msg(
            "<b8>",
            "frank@example.com",
            extra_identities=((IdentityKind.PHONE, "+1 415 555 0100"),),
        ),
        msg("sms-1", "+14155550100", channel=Channel.SMS),  # frank, by the phone just linked
        # into carl's older conversation (3) by its token: now 3, not 5, is his latest; the answers
        # read up front no longer hold for the rest of the batch
        msg("<b9>", "eve@example.com", conversation_token=carl_token),
        msg("<b14>", "carl@example.com"),
        # by headers, ann's conversation: gus is not ann, a new conversation (flagged)
        msg("<b11>", "gus@example.com", in_reply_to="<s1>"),
        msg("<b12>", "ann@example.com"),
        msg("<b13>", "bob@example.com"),
        msg("<s2>", "gus@example.com"),  # bob's Message-ID reused by gus: a message of his
        msg("<b15>", "ann@example.com", references=("<b12>", "<s1>")),  # ann's own thread
    ]


_TABLES = ("outbox", "assignments", "messages", "conversations", "identities", "contacts")


def _empty(conn) -> None:
    """Back to an empty database with ids starting at 1 again."""
    sql = Sql(conn)
    if sql.sqlite:
        for table in _TABLES:
            sql.run(f"DELETE FROM {table}")  # integer primary keys restart at max + 1
    else:
        sql.run(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE")


async def _seeded(store):
    await store.write(_empty)
    for m in SEED:
        await store.write(
            lambda c, m=m: ingest_in(c, prepare(m, SETTINGS), SETTINGS, T0 - timedelta(hours=2))
        )
    await store.write(lambda c: Sql(c).run("UPDATE conversations SET status = 'closed'"))
    await store.write(
        lambda c: ingest_in(c, prepare(LATER, SETTINGS), SETTINGS, T0 - timedelta(hours=1))
    )

    def shape(conn):
        sql = Sql(conn)
        sql.run("UPDATE conversations SET status = 'open' WHERE id IN (1, 3)")
        sql.run("UPDATE conversations SET status = 'resolved' WHERE id = 2")
        # carl has two open conversations: 3 (older) and 5 (his latest)
        return sql.scalar("SELECT token FROM conversations WHERE id = 3")

    return await store.write(shape)


async def _contents(store) -> dict[str, list[dict]]:
    def read(conn):
        sql = Sql(conn)
        return {
            "messages": sql.dicts(
                "SELECT id, conversation_id, author_id, channel, external_id, sender_key, text, meta "
                "FROM messages ORDER BY id"
            ),
            "conversations": sql.dicts(
                "SELECT id, contact_id, channel, status, last_message_at, resolved_at "
                "FROM conversations ORDER BY id"
            ),
            "contacts": sql.dicts("SELECT id, name, merged_into FROM contacts ORDER BY id"),
            "identities": sql.dicts(
                "SELECT contact_id, kind, value, verified FROM identities ORDER BY id"
            ),
        }

    return await store.read(read)


@pytest.mark.parametrize("size", [1, 3, 16])
async def test_a_batch_stores_what_one_at_a_time_stores(store, size):
    token = await _seeded(store)
    items_one = [prepare(m, SETTINGS) for m in batch(token)]
    expected = [
        await store.write(lambda c, item=item: ingest_in(c, item, SETTINGS, T0))
        for item in items_one
    ]
    one = await _contents(store)

    token2 = await _seeded(store)  # the same again, now in batches of `size`
    assert token != token2  # conversation tokens are random: compare the rest
    items_grouped = [prepare(m, SETTINGS) for m in batch(token2)]
    got = []
    for start in range(0, len(items_grouped), size):
        chunk = items_grouped[start : start + size]
        got += await store.write(lambda c, chunk=chunk: ingest_batch(c, chunk, SETTINGS, T0))
    assert got == expected
    assert await _contents(store) == one
    # the cases above happened as described, not merely alike on both sides
    by_key = dict(zip([m.external_id for m in batch(token)], expected, strict=False))
    assert by_key["<b5>"].conversation_id == by_key["<b4>"].conversation_id
    assert by_key["<b3>"].conversation_reopened
    assert by_key["<b6>"].conversation_created
    assert expected[5].duplicate and expected[5].message_id == expected[0].message_id
    assert expected[6].duplicate and expected[6].conversation_id == 3
    assert by_key["sms-1"].contact_id == by_key["<b8>"].contact_id
    assert by_key["<b9>"].conversation_id == 3
    assert by_key["<b14>"].conversation_id == 3
    assert by_key["<b11>"].conversation_created and by_key["<b11>"].conversation_id != 1
    assert not by_key["<s2>"].duplicate and by_key["<s2>"].contact_id == by_key["<b11>"].contact_id
    assert by_key["<b15>"].conversation_id == by_key["<b12>"].conversation_id == 1
    metas = {m["external_id"]: m["meta"] for m in one["messages"]}
    refers = {
        key: (json.loads(meta) if isinstance(meta, str) else meta).get("refers_to")
        for key, meta in metas.items()
    }
    assert refers["<b11>"] == 1 and refers["<b15>"] is None


async def test_overlapping_batches_in_opposite_orders_do_not_deadlock(store):
    """Two processes (two connection pools) ingest batches over the same senders, one in
    the reverse order of the other. Senders locked one by one in message order would meet
    in the middle and deadlock (PostgreSQL then fails one transaction); the batch locks
    all its senders in one statement, in one order."""
    other = open_store(store.url)
    senders = [f"lock{i}@example.com" for i in range(24)]
    try:
        for rnd in range(4):
            forward = [prepare(msg(f"<f{rnd}-{s}>", s), SETTINGS) for s in senders]
            backward = [prepare(msg(f"<r{rnd}-{s}>", s), SETTINGS) for s in reversed(senders)]
            a, b = await asyncio.gather(
                store.write(lambda c, items=forward: ingest_batch(c, items, SETTINGS, T0)),
                other.write(lambda c, items=backward: ingest_batch(c, items, SETTINGS, T0)),
            )
            assert not any(r.duplicate for r in a + b)
        counts = await store.read(
            lambda c: Sql(c).first(
                "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM contacts), "
                "(SELECT count(*) FROM conversations)"
            )
        )
        # one contact and one conversation per sender, whichever batch came first
        assert counts == (4 * 2 * len(senders), len(senders), len(senders))
    finally:
        await other.close()
