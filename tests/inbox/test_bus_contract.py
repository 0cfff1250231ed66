"""One contract for every event-bus backend: in-process and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from inbox.bus import EventBus, MemoryBus, RedisBus, open_bus
from inbox.errors import BusError
from inbox.events import Event, EventName


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_bus(request):
    made: list[EventBus] = []

    def factory() -> EventBus:
        bus = (
            MemoryBus()
            if request.param == "memory"
            else RedisBus(request.getfixturevalue("redis_url"))
        )
        made.append(bus)
        return bus

    factory.shared = request.param == "redis"  # several instances see each other's events
    yield factory
    for bus in made:
        await bus.close()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_subscribers_get_named_events_in_order(make_bus):
    bus = make_bus()
    got: list[int] = []
    everything: list[str] = []

    async def on_received(event: Event) -> None:
        got.append(event.data["n"])

    async def on_any(event: Event) -> None:
        everything.append(event.name)

    bus.subscribe(EventName.MESSAGE_RECEIVED, on_received)
    bus.subscribe("*", on_any)
    await bus.start()
    for n in range(50):
        await bus.publish(Event(EventName.MESSAGE_RECEIVED, {"n": n}))
    await bus.publish(Event(EventName.CONVERSATION_ASSIGNED, {"conversation_id": 1}))
    await wait_for(lambda: len(everything) == 51)
    assert sorted(got) == list(range(50))
    assert everything.count(EventName.CONVERSATION_ASSIGNED) == 1


async def test_a_failing_handler_does_not_stop_others(make_bus):
    bus = make_bus()
    seen: list[Event] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    async def fine(event: Event) -> None:
        seen.append(event)

    bus.subscribe("x", broken)
    bus.subscribe("x", fine)
    await bus.start()
    await bus.publish(Event("x", {"a": 1}))
    await bus.publish(Event("x", {"a": 2}))
    await wait_for(lambda: len(seen) == 2)
    assert [e.data["a"] for e in seen] == [1, 2]


async def test_payload_round_trips(make_bus):
    bus = make_bus()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe("*", record)
    await bus.start()
    sent = Event(
        EventName.SLA_BREACHED,
        {"conversation_id": 7, "priority": "high", "ids": [1, 2], "note": "é<script>"},
    )
    await bus.publish(sent)
    await wait_for(lambda: len(seen) == 1)
    assert (
        seen[0].name == sent.name
        and dict(seen[0].data) == dict(sent.data)
        and seen[0].at == sent.at
    )


async def test_events_cross_instances_when_the_backend_is_shared(make_bus):
    a, b = make_bus(), make_bus()
    seen_b: list[Event] = []

    async def record(event: Event) -> None:
        seen_b.append(event)

    b.subscribe("*", record)
    await a.start()
    await b.start()
    await a.publish(Event("ping", {"from": "a"}))
    if make_bus.shared:
        await wait_for(lambda: len(seen_b) == 1)
        assert seen_b[0].data["from"] == "a"
    else:
        await asyncio.sleep(0.05)
        assert seen_b == []  # in-process buses are separate worlds


def test_resolver():
    assert isinstance(open_bus(None), MemoryBus)
    assert isinstance(open_bus("memory://"), MemoryBus)
    with pytest.raises(BusError):
        open_bus("kafka://x")
