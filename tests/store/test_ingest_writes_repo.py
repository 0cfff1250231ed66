"""The ingest transaction on SQLite and PostgreSQL: one message, a batch in one
transaction, the careful rerun that keeps a bad message from failing its neighbours, and
what the settings decide. (That a batch stores exactly what one-at-a-time ingest stores:
tests/inbox/test_ingest_batch.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from inbox.errors import ValidationError
from inbox.ingest import prepare
from inbox.store import contacts, conversations, messages
from inbox.store import schema as t
from inbox.store.ingest_writes import (
    IngestSettings,
    ingest_batch,
    ingest_in,
    write_batch,
    write_carefully,
)
from inbox.types import Channel, InboundMessage, IngestResult

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = IngestSettings()


def item(external_id: str, sender: str = "ann@example.com", settings=SETTINGS, **kw):
    cursor = kw.pop("cursor", None)
    message = InboundMessage(
        channel=kw.pop("channel", Channel.EMAIL),
        external_id=external_id,
        sender=sender,
        text=kw.pop("text", f"text of {external_id}"),
        received_at=T0,
        **kw,
    )
    return prepare(message, settings, cursor)


async def test_one_message_makes_its_contact_and_conversation_and_a_redelivery_nothing(store):
    first = await store.write(
        lambda c: ingest_in(c, item("<a>", display_name="Ann", subject="Hi"), SETTINGS, T0)
    )
    assert first.conversation_created and not first.duplicate
    conv = await store.read(lambda c: conversations.get(c, first.conversation_id))
    assert conv.contact_id == first.contact_id and conv.subject == "Hi"
    assert conv.priority == "normal" and conv.last_message_at == T0
    assert (await store.read(lambda c: contacts.get(c, first.contact_id))).name == "Ann"
    stored = await store.read(lambda c: messages.get(c, first.message_id))
    assert stored.external_id == "<a>" and stored.text == "text of <a>"
    again = await store.write(lambda c: ingest_in(c, item("<a>", text="x"), SETTINGS, T0))
    assert again == IngestResult(first.message_id, first.conversation_id, first.contact_id, True)


async def test_the_settings_decide_priority_and_the_thread_window(store):
    settings = IngestSettings(default_priority="low", thread_window=timedelta(hours=1))
    a = await store.write(
        lambda c: ingest_in(c, item("<a>", settings=settings, priority="bogus"), settings, T0)
    )
    b = await store.write(
        lambda c: ingest_in(c, item("<b>", settings=settings), settings, T0 + timedelta(minutes=59))
    )
    late = T0 + timedelta(hours=3)
    c_ = await store.write(lambda c: ingest_in(c, item("<c>", settings=settings), settings, late))
    assert (await store.read(lambda c: conversations.get(c, a.conversation_id))).priority == "low"
    assert b.conversation_id == a.conversation_id  # within the window: the same thread
    assert c_.conversation_id != a.conversation_id and c_.conversation_created


async def test_a_polled_source_moves_on_even_for_a_redelivery(store):
    await store.write(lambda c: ingest_in(c, item("<a>", cursor=("imap:x", "7")), SETTINGS, T0))
    await store.write(lambda c: ingest_in(c, item("<a>", cursor=("imap:x", "9")), SETTINGS, T0))
    position = await store.read(
        lambda c: c.execute(
            sa.select(t.cursors.c.position).where(t.cursors.c.source == "imap:x")
        ).scalar_one()
    )
    assert position == "9"


async def test_a_batch_is_stored_in_order_each_message_seeing_the_ones_before(store):
    items = [item("<a>"), item("<b>"), item("<c>", "bob@example.com"), item("<a>")]
    results = await store.call(write_batch, items, SETTINGS, T0)
    assert [r.duplicate for r in results] == [False, False, False, True]
    assert results[0].conversation_created and not results[1].conversation_created
    assert results[1].conversation_id == results[0].conversation_id
    assert results[3].message_id == results[0].message_id
    assert results[2].contact_id != results[0].contact_id
    assert [r.message_id for r in results[:3]] == sorted(r.message_id for r in results[:3])
    again = await store.write(lambda c: ingest_batch(c, items[:1], SETTINGS, T0))
    assert again[0].duplicate and again[0].message_id == results[0].message_id


async def test_the_careful_rerun_fails_only_the_bad_message(store):
    items = [item("<a>"), item("<bad>", text="lone \udc00 surrogate"), item("<c>")]
    results = await store.call(write_carefully, items, SETTINGS, T0)
    assert isinstance(results[1], ValidationError)
    good = [r for r in results if isinstance(r, IngestResult)]
    assert len(good) == 2 and good[0].conversation_id == good[1].conversation_id
    count = await store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()
    )
    assert count == 2
    # a message stored already answers with its first result there too
    rerun = await store.call(write_carefully, items[:1], SETTINGS, T0)
    assert rerun[0] == IngestResult(good[0].message_id, good[0].conversation_id,
                                    good[0].contact_id, True)  # fmt: skip
