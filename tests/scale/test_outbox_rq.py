"""Outbound delivery on RQ with real processes: `omnidesk serve --role worker` on PostgreSQL
and Redis, delivering through the real SMTP sender to an aiosmtpd relay in this process.

1. The same job enqueued twice, replayed under other ids, or run for a message that already
   has a provider id: one mail reaches the relay.
2. A worker SIGKILLed while the relay holds its DATA: the sweeper re-enqueues the message
   once the lease expired and another worker delivers it; the relay accepted it exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP
from rq import Queue, Worker

from inbox.bus.backends import MemoryBus
from inbox.ingest import Ingestor
from inbox.outbox.rq_relay import QUEUE, RqRelay
from inbox.store import schema as t
from inbox.store.backends import Store, open_store
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind, Channel, InboundMessage
from omnidesk.jobs import DELIVER
from tests.conftest import _TABLES, SECRET, write_config
from tests.processes import until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

LEASE = 3


class HoldingRelay:
    """An SMTP relay that can hold DATA before answering; a mail counts as accepted only if
    the client is still connected when the 250 goes out (what a real relay acknowledges)."""

    def __init__(self) -> None:
        self.accepted: list[EmailMessage] = []
        self.abandoned = 0
        self.holding = 0
        self.hold = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.holding += 1
        try:
            while self.hold:
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:  # aiosmtpd cancels the handler when the client goes
            self.abandoned += 1
            raise
        finally:
            self.holding -= 1
        if server.transport is None or server.transport.is_closing():
            self.abandoned += 1
            return "451 client gone"
        self.accepted.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def count(self, text: str) -> int:
        return sum(text in str(m.get_body(("plain",)).get_content()) for m in self.accepted)  # type: ignore[union-attr]


@pytest.fixture
async def relay() -> AsyncIterator[tuple[HoldingRelay, int]]:
    sink = HoldingRelay()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0
    )
    yield sink, server.sockets[0].getsockname()[1]
    sink.hold = False
    server.close()
    await server.wait_closed()


@pytest.fixture
async def world(tmp_path: Path, postgres_database: str, redis_url: str, relay):
    sink, port = relay
    store = open_store(postgres_database)
    await store.write(lambda c: c.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")))
    config = write_config(
        tmp_path,
        f'[redis]\nurl = "{redis_url}"\n'
        '[email]\ndomain = "desk.test"\ninstance = "desk-test"\n'
        f'[email.relay]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
        "[smtp]\nenabled = false\n"
        f"[outbox]\nlease_seconds = {LEASE}\nsweep_interval_seconds = 0.3\n",
        database_url=postgres_database,
    )
    writer = RqRelay(store, redis_url, DELIVER)  # what a web process does after a reply
    procs: list[subprocess.Popen[bytes]] = []

    class World:
        pass

    w = World()
    w.store, w.sink, w.config, w.relay, w.procs, w.redis_url = (
        store,
        sink,
        config,
        writer,
        procs,
        redis_url,
    )
    w.conversation = await conversation(store)

    def start(name: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
        log = open(tmp_path / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve", "--role", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        procs.append(proc)
        return proc

    w.start = start
    w.log = lambda name: (tmp_path / f"{name}.log").read_text()
    try:
        yield w
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await asyncio.to_thread(writer.redis.close)
        writer.executor.shutdown()
        await store.close()


async def conversation(store: Store) -> int:
    ingest = Ingestor(store, MemoryBus())
    result = await ingest(
        InboundMessage(
            channel=Channel.EMAIL,
            external_id="<first@example.org>",
            sender="ann@example.org",
            text="where is my order?",
            subject="Order",
            received_at=datetime.now(UTC),
        )
    )
    await ingest.close()
    return result.conversation_id


async def reply(w: Any, text: str) -> int:
    return await w.store.write(
        lambda c: enqueue(
            c, conversation_id=w.conversation, text=text, author_kind=AuthorKind.AGENT
        )
    )


async def row(w: Any, message_id: int) -> dict[str, Any]:
    def read(c: Any) -> dict[str, Any]:
        job = c.execute(sa.select(t.outbox).where(t.outbox.c.message_id == message_id)).mappings()
        msg = c.execute(sa.select(t.messages.c.provider_id).where(t.messages.c.id == message_id))
        return {**job.one(), "provider_id": msg.scalar()}

    return await w.store.read(read)


def rq_workers(w: Any) -> int:
    import redis

    with redis.Redis.from_url(w.redis_url) as conn:
        return len(Worker.all(connection=conn))


async def settled(w: Any) -> bool:
    """The outbox queue is empty and no delivery job is running."""
    import redis

    def check() -> bool:
        with redis.Redis.from_url(w.redis_url) as conn:
            queue = Queue(QUEUE, connection=conn)
            return queue.count == 0 and queue.started_job_registry.count == 0

    return await asyncio.to_thread(check)


async def test_the_same_job_twice_delivers_once(world):
    w = world
    proc = w.start("worker")
    await until(lambda: rq_workers(w) == 1 or proc.poll() is not None, 30, "the RQ worker")
    assert proc.poll() is None, w.log("worker")

    message_id = await reply(w, "Your parcel left today (once)")
    first = await asyncio.to_thread(w.relay.enqueue, message_id, 0)
    again = await asyncio.to_thread(w.relay.enqueue, message_id, 0)
    assert first is True
    await until(lambda: w.sink.count("(once)") >= 1, 20, "the delivery")

    # replays under other ids (a sweeper's later attempt, a hand-made job) find it sent
    def replay() -> None:
        import redis

        with redis.Redis.from_url(w.redis_url) as conn:
            queue = Queue(QUEUE, connection=conn)
            for _ in range(3):
                queue.enqueue(DELIVER, message_id, result_ttl=0)
        w.relay.enqueue(message_id, 1)

    await asyncio.to_thread(replay)
    await until(lambda: settled(w), 20, "the replayed jobs")
    done = await row(w, message_id)
    assert done["status"] == "done" and done["provider_id"], done
    assert done["attempts"] == 1, done

    # a message that already has a provider id is never sent again, even if its job row
    # says otherwise (the worker died after the provider accepted, before the row was done)
    await w.store.write(
        lambda c: c.execute(
            sa.update(t.outbox)
            .where(t.outbox.c.message_id == message_id)
            .values(status="pending", lease_until=None)
        )
    )
    await asyncio.to_thread(w.relay.enqueue, message_id, 1)
    await until(lambda: settled(w), 20, "the last job")
    await until(
        lambda: _status_is(w, message_id, "done"),
        10,
        "the row marked done without sending",
    )
    await asyncio.sleep(1.0)  # a sweep or two: nothing more may go out
    assert w.sink.count("(once)") == 1, f"duplicate was {'rejected' if not again else 'run'}"
    assert proc.poll() is None, w.log("worker")


async def _status_is(w: Any, message_id: int, status: str) -> bool:
    return (await row(w, message_id))["status"] == status


async def test_worker_killed_mid_delivery_is_delivered_once_by_another(world):
    w = world
    w.sink.hold = True  # the relay holds DATA: the send is in flight
    first = w.start("worker1")
    await until(lambda: rq_workers(w) == 1 or first.poll() is not None, 30, "worker 1")
    message_id = await reply(w, "Refund approved (killed)")
    w.relay.poke(message_id)
    await until(lambda: w.sink.holding == 1, 20, "worker 1 sending")
    leased = await row(w, message_id)
    assert leased["status"] == "sending" and leased["attempts"] == 1, leased

    first.send_signal(signal.SIGKILL)
    first.wait(10)
    w.sink.hold = False
    await until(
        lambda: w.sink.abandoned == 1, 10, f"the relay to see the client gone {vars(w.sink)}"
    )
    assert w.sink.count("(killed)") == 0

    second = w.start("worker2")
    started = time.monotonic()
    await until(lambda: w.sink.count("(killed)") >= 1, 30, "delivery by worker 2")
    waited = time.monotonic() - started
    await until(lambda: _status_is(w, message_id, "done"), 10, "the row done")
    await asyncio.sleep(2 * LEASE)  # leases and sweeps go by: nothing more may go out
    assert w.sink.count("(killed)") == 1
    done = await row(w, message_id)
    assert done["attempts"] == 2 and done["provider_id"], done
    assert "outbox sweeper enqueued" in w.log("worker2"), w.log("worker2")
    assert waited < LEASE + 15, waited
    assert second.poll() is None, w.log("worker2")
