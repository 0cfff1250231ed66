"""A customer's reply to a solved conversation (issue 17): within the reopen window it
reopens it; later it starts a new conversation linked (`linked_to`) to the old one, as it
does after a closed one; pending, on hold and snoozed become open. Through the real ingest
path, one message at a time and in a batch, on both store backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from inbox import threads
from inbox.bus.backends import MemoryBus
from inbox.ingest import Ingestor, IngestSettings
from inbox.store import schema as t
from inbox.types import ConversationStatus
from tests.inbox.test_ingest import msg

WINDOW = timedelta(days=1)


@pytest.fixture
async def ingest(store):
    bus = MemoryBus()
    ingestor = Ingestor(store, bus, IngestSettings(reopen_window=WINDOW))
    yield ingestor
    await ingestor.close()
    await bus.close()


async def set_row(store, cid, **values):
    c = t.conversations.c
    await store.write(
        lambda conn: conn.execute(sa.update(t.conversations).where(c.id == cid).values(**values))
    )


async def get_row(store, cid):
    c = t.conversations.c
    return await store.read(
        lambda conn: conn.execute(sa.select(t.conversations).where(c.id == cid)).one()
    )


async def test_a_reply_within_the_window_reopens_the_solved_conversation(store, ingest):
    a = await ingest(msg("in1", sender="ida@example.com"))
    solved = datetime.now(UTC) - WINDOW + timedelta(minutes=5)
    await set_row(store, a.conversation_id, status="resolved", resolved_at=solved)
    b = await ingest(msg("in2", sender="ida@example.com"))
    assert b.conversation_id == a.conversation_id and b.conversation_reopened
    row = await get_row(store, a.conversation_id)
    assert (row.status, row.resolved_at) == ("open", None)


async def test_a_reply_after_the_window_starts_a_new_linked_conversation(store, ingest):
    a = await ingest(msg("out1", sender="jo@example.com"))
    solved = datetime.now(UTC) - WINDOW - timedelta(minutes=5)
    await set_row(store, a.conversation_id, status="resolved", resolved_at=solved)
    b = await ingest(msg("out2", sender="jo@example.com", in_reply_to="out1"))
    assert b.conversation_created and b.conversation_id != a.conversation_id
    assert not b.conversation_reopened
    new = await get_row(store, b.conversation_id)
    assert (new.status, new.linked_to) == ("open", a.conversation_id)
    assert (await get_row(store, a.conversation_id)).status == "resolved"
    c = await ingest(msg("out3", sender="jo@example.com"))  # follows the new one
    assert c.conversation_id == b.conversation_id


async def test_after_a_closed_one_the_new_conversation_is_linked_to_it(store, ingest):
    a = await ingest(msg("cl1", sender="kit@example.com"))
    await set_row(store, a.conversation_id, status="closed")
    b = await ingest(msg("cl2", sender="kit@example.com", in_reply_to="cl1"))
    assert b.conversation_created
    assert (await get_row(store, b.conversation_id)).linked_to == a.conversation_id


@pytest.mark.parametrize("status", ["pending", "on_hold", "snoozed"])
async def test_set_aside_conversations_open_at_a_reply(store, ingest, status):
    a = await ingest(msg(f"sa1-{status}", sender=f"lu-{status}@example.com"))
    await set_row(store, a.conversation_id, status=status)
    b = await ingest(msg(f"sa2-{status}", sender=f"lu-{status}@example.com"))
    assert b.conversation_id == a.conversation_id
    assert (await get_row(store, a.conversation_id)).status == "open"


async def test_a_batch_after_the_window_starts_one_linked_conversation(store, ingest):
    a = await ingest(msg("bt1", sender="max@example.com"))
    solved = datetime.now(UTC) - 2 * WINDOW
    await set_row(store, a.conversation_id, status="resolved", resolved_at=solved)
    got = await asyncio.gather(
        *(ingest(msg(f"bt{n}", sender="max@example.com")) for n in range(2, 8))
    )
    ids = {r.conversation_id for r in got}
    assert len(ids) == 1 and a.conversation_id not in ids
    assert (await get_row(store, ids.pop())).linked_to == a.conversation_id


def test_choose_applies_the_one_reply_rule():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    solved = threads.Candidate(7, ConversationStatus.RESOLVED, now, None, now - 2 * WINDOW)
    fresh = threads.Candidate(7, ConversationStatus.RESOLVED, now, None, now - WINDOW)
    unknown = threads.Candidate(7, ConversationStatus.RESOLVED, now)

    def pick(found, reopen_window=WINDOW):
        return threads.choose(
            by_token=found,
            by_headers=None,
            recent=None,
            now=now,
            window=WINDOW,
            reopen_window=reopen_window,
        )

    assert pick(solved) == threads.ThreadChoice(None, threads.Via.NEW, linked_to=7)
    assert pick(fresh) == threads.ThreadChoice(7, threads.Via.TOKEN, reopen=True)
    assert pick(unknown).linked_to == 7  # solved at an unknown time: long ago
    assert pick(solved, reopen_window=None).reopen  # no window given: as before
