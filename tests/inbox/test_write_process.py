"""The SQLite writer process (`SQLiteStore(write_process=True)`, what `omnidesk serve`
runs): transactions commit in a child with its own GIL, errors come back as the errors
the caller handles, a child that dies fails only the write in flight and is replaced,
and the writer thread and the child take turns without 'database is locked'."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.bus.backends import MemoryBus
from inbox.errors import StoreError, ValidationError
from inbox.ingest import Ingestor
from inbox.store.backends import SQLiteStore
from inbox.store.fastsql import Sql
from tests.inbox.test_ingest import msg

# -- functions the child runs (module-level: they travel by name) -------------------------


def note(conn: Connection, text: str) -> int:
    conn.execute(sa.text("CREATE TABLE IF NOT EXISTS notes (text TEXT UNIQUE)"))
    conn.execute(sa.text("INSERT INTO notes (text) VALUES (:t)"), {"t": text})
    return os.getpid()


def note_then_fail(conn: Connection, text: str) -> None:
    note(conn, text)
    raise ValidationError("no such thing", field="thing")


def note_then_hang(conn: Connection, text: str) -> None:
    note(conn, text)
    time.sleep(60)


def unpicklable(conn: Connection) -> object:
    return lambda: None


def notes(conn: Connection) -> list[str]:
    return sorted(conn.execute(sa.text("SELECT text FROM notes")).scalars())


@pytest.fixture
async def pstore(sqlite_url):
    store = SQLiteStore(sqlite_url, write_process=True)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_ingest_commits_in_the_child(pstore):
    ingest = Ingestor(pstore, MemoryBus())
    first = await asyncio.gather(
        *(ingest(msg(f"<m{i}>", f"u{i % 7}@example.com")) for i in range(50))
    )
    again = await ingest(msg("<m3>", "u3@example.com"))  # a redelivery: the first result
    await ingest.close()
    assert again.duplicate and again.message_id == first[3].message_id
    assert len({r.message_id for r in first}) == 50
    assert await pstore.read(lambda c: Sql(c).scalar("SELECT count(*) FROM messages")) == 50
    assert await pstore.read(lambda c: Sql(c).scalar("SELECT count(*) FROM contacts")) == 7
    child = pstore.process.pid()
    assert child not in (None, os.getpid())
    # a background worker that does not preempt the event loop waking it
    assert os.sched_getscheduler(child) == os.SCHED_BATCH


async def test_errors_come_back_as_ours_and_roll_back(pstore):
    with pytest.raises(ValidationError) as info:
        await pstore.call(note_then_fail, "a")
    assert info.value.field == "thing" and str(info.value) == "no such thing"
    await pstore.call(note, "b")
    with pytest.raises(StoreError, match="IntegrityError"):
        await pstore.call(note, "b")  # UNIQUE: a library error arrives as StoreError
    with pytest.raises(StoreError):
        await pstore.call(unpicklable)  # the answer cannot travel: an error, not a hang
    await pstore.call(note, "c")  # the child is still serving
    assert await pstore.read(notes) == ["b", "c"]


async def test_a_killed_child_fails_the_write_in_flight_and_is_replaced(pstore):
    first = await pstore.call(note, "before")
    hanging = asyncio.create_task(pstore.call(note_then_hang, "lost"))
    await asyncio.sleep(0.5)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(StoreError, match="writer process exited"):
        await hanging
    second = await pstore.call(note, "after")  # a new child
    assert second != first
    assert await pstore.read(notes) == ["after", "before"]  # the uncommitted one is gone
    os.kill(second, signal.SIGKILL)  # killed between writes: the next write notices
    with pytest.raises(StoreError):
        await pstore.call(note, "unsent")
    assert await pstore.call(note, "later") not in (first, second)


async def test_thread_and_child_take_turns(pstore):
    await pstore.call(note, "seed")

    def by_thread(i: int):
        return lambda conn: note(conn, f"t{i}")

    await asyncio.gather(
        *(pstore.write(by_thread(i)) for i in range(40)),
        *(pstore.call(note, f"p{i}") for i in range(40)),
    )
    assert len(await pstore.read(notes)) == 81
    assert pstore.writes_in_flight() == 0


async def test_close_ends_the_child(sqlite_url):
    store = SQLiteStore(sqlite_url, write_process=True)
    pid = await store.call(note, "x")
    await store.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(StoreError, match="closed"):
        await store.call(note, "y")


def test_what_travels_to_the_writer_pickles_whole():
    import pickle
    from datetime import UTC, datetime, timedelta

    from inbox.ingest import IngestSettings, prepare
    from inbox.types import Attachment, Channel, IdentityKind, InboundMessage, IngestResult

    message = InboundMessage(
        channel=Channel.CHAT,
        external_id="c-1",
        sender="visitor-1",
        text="hi",
        received_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        display_name="Ann",
        subject="s",
        html="<p>hi</p>",
        attachments=(Attachment("a.png", "image/png", 3, "k/1", "cid1", True),),
        conversation_token="t",
        in_reply_to="<r>",
        references=("<a>", "<b>"),
        auto_submitted=True,
        inbox="shop",
        priority="high",
        skills=("billing",),
        extra_identities=((IdentityKind.EMAIL, "ann@example.com"),),
        metadata={"n": 2**70, "nested": {"x": [1, None]}},
    )
    item = prepare(message, IngestSettings(), ("imap", "7"))
    result = IngestResult(1, 2, 3, True, False, True)
    settings = IngestSettings(("p1", "p2"), "p2", timedelta(hours=5), "DE", 9)
    for obj in (message, item, result, settings):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and type(back) is type(obj)
    assert pickle.loads(pickle.dumps(message)).channel is Channel.CHAT


async def test_a_write_cancelled_while_waiting_leaves_no_stray_answer(pstore):
    first = await pstore.call(note, "before")
    hanging = asyncio.create_task(pstore.call(note_then_hang, "cancelled"))
    await asyncio.sleep(0.5)
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    # the next call gets its own answer from a new child, not the cancelled one's
    assert await pstore.call(note, "after") != first
    assert await pstore.read(notes) == ["after", "before"]
