"""A Redis outage heals by itself (issue 15): on a Redis server the test starts and kills
(not the shared one), the bus's listener comes back, says so (bus.resumed) and hears
events again; while Redis is down, ingest answers every request (committed: 201 later from
the API) instead of hanging behind a batcher that died on a failed publish."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from inbox import metrics
from inbox.bus.backends import RedisBus
from inbox.errors import BusError
from inbox.events import Event, EventName
from inbox.ingest import Ingestor
from inbox.store import schema as t
from inbox.types import Channel, InboundMessage
from tests.redis_server import RedisServer, own_redis  # noqa: F401 (a fixture)

OUTAGE = 3.0  # seconds; the code path is the one a 15 s outage takes (the cluster test)


async def until(predicate, timeout: float, what: str) -> float:
    """Wait for `predicate()`; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_the_listener_reconnects_resubscribes_and_announces_the_resume(
    own_redis: RedisServer,  # noqa: F811
) -> None:
    listener, publisher = RedisBus(own_redis.url(11)), RedisBus(own_redis.url(11))
    heard: list[int] = []
    resumed: list[Event] = []
    everything: list[str] = []

    async def on_x(event: Event) -> None:
        heard.append(event.data["n"])

    async def on_resumed(event: Event) -> None:
        resumed.append(event)

    async def on_any(event: Event) -> None:
        everything.append(event.name)

    listener.subscribe("x", on_x)
    listener.subscribe(EventName.BUS_RESUMED, on_resumed)
    listener.subscribe("*", on_any)
    try:
        await listener.start()
        await publisher.start()
        await publisher.publish(Event("x", {"n": 1}))
        await until(lambda: heard == [1], 5, "the first event")
        assert listener.connected

        own_redis.kill()
        await until(lambda: not listener.connected, 5, "the listener to notice")
        with pytest.raises(BusError):
            await publisher.publish(Event("x", {"n": 2}))  # lost: nobody can carry it
        await asyncio.sleep(OUTAGE)
        assert resumed == []

        ok, detail = await listener.health()  # /readyz says so
        assert not ok and "unreachable" in detail, detail

        counted = metrics.REGISTRY.get_sample_value("omnidesk_bus_reconnects_total")
        own_redis.start()
        took = await until(lambda: listener.connected and resumed, 10, "the resume")
        assert await listener.health() == (True, "listening")
        assert took < 10
        assert listener.reconnects == 1
        await until(lambda: publisher.connected, 10, "the publisher's listener")
        assert (
            metrics.REGISTRY.get_sample_value("omnidesk_bus_reconnects_total") == counted + 2
        )  # both came back: /metrics
        await until(lambda: publisher.connected, 10, "the publisher's listener")
        await publisher.publish(Event("x", {"n": 3}))
        await until(lambda: heard == [1, 3], 5, "an event after the outage")
        assert EventName.BUS_RESUMED not in everything  # local to its named handlers
    finally:
        await listener.close()
        await publisher.close()


async def test_ingest_answers_every_request_while_redis_is_down(
    own_redis: RedisServer,  # noqa: F811
    sqlite_url: str,
) -> None:
    from inbox.store.backends import open_store

    store = open_store(sqlite_url)
    bus = RedisBus(own_redis.url(11))
    await bus.start()
    ingest = Ingestor(store, bus)
    try:
        own_redis.kill()

        def msg(n: int) -> InboundMessage:
            return InboundMessage(
                channel=Channel.API,
                external_id=f"outage-{n}",
                sender=f"c{n}@example.com",
                text=f"message {n} during the outage",
                received_at=datetime.now(UTC),
            )

        # requests arrive one after another while the batcher is busy failing to publish
        tasks = []
        for n in range(80):
            tasks.append(asyncio.create_task(ingest(msg(n))))
            await asyncio.sleep(0.01)
        done, pending = await asyncio.wait(tasks, timeout=15)
        assert not pending, f"{len(pending)} of 80 requests unanswered"
        results = [task.result() for task in done]  # committed: none raised
        assert len({r.message_id for r in results}) == 80

        # every one stored, waiting for triage from the store when the bus resumes
        untriaged = await store.read(
            lambda c: c.execute(
                sa.select(sa.func.count())
                .select_from(t.messages)
                .where(t.messages.c.needs_triage.is_(True))
            ).scalar_one()
        )
        assert untriaged == 80
    finally:
        with contextlib.suppress(TimeoutError):  # (a dead batcher never gets idle)
            await asyncio.wait_for(ingest.close(), 10)
        await bus.close()
        await store.close()
