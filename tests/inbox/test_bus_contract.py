"""One contract for every event-bus backend: in-process and Redis."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime

import pytest

from inbox.bus.backends import EventBus, MemoryBus, RedisBus, open_bus
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


async def test_publish_many_keeps_order_across_batches_and_instances(make_bus):
    a = make_bus()
    b = make_bus() if make_bus.shared else a  # a listener in another process where possible
    seen: list[tuple[str, int]] = []
    received: list[int] = []

    async def on_any(event: Event) -> None:
        seen.append((event.name, event.data["n"]))

    async def on_received(event: Event) -> None:
        received.append(event.data["n"])

    b.subscribe("*", on_any)
    b.subscribe(EventName.MESSAGE_RECEIVED, on_received)
    await a.start()
    await b.start()
    sent: list[Event] = []
    n = 0
    for size in (1, 7, 0, 120, 1, 33):
        batch = []
        for _ in range(size):
            name = EventName.CONVERSATION_CREATED if n % 5 == 0 else EventName.MESSAGE_RECEIVED
            batch.append(Event(name, {"n": n}))
            n += 1
        if size == 1:
            await a.publish(batch[0])
        else:
            await a.publish_many(batch)
        sent += batch
    await wait_for(lambda: len(seen) == len(sent))
    await b.drain()
    assert seen == [(e.name, e.data["n"]) for e in sent]
    assert received == [e.data["n"] for e in sent if e.name == EventName.MESSAGE_RECEIVED]


async def test_a_failing_handler_still_gets_the_rest_of_its_batch(make_bus):
    bus = make_bus()
    tried: list[int] = []
    fine: list[int] = []

    async def broken(event: Event) -> None:
        tried.append(event.data["n"])
        if event.data["n"] == 1:
            raise RuntimeError("boom")

    async def ok(event: Event) -> None:
        fine.append(event.data["n"])

    bus.subscribe("x", broken)
    bus.subscribe("x", ok)
    await bus.start()
    await bus.publish_many(Event("x", {"n": n}) for n in range(4))
    await wait_for(lambda: len(fine) == 4 and len(tried) == 4)
    assert tried == fine == [0, 1, 2, 3]


async def test_handlers_get_read_only_data_as_json_would_carry_it(make_bus):
    bus = make_bus()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    async def meddle(event: Event) -> None:
        with pytest.raises(TypeError):
            event.data["n"] = 2  # type: ignore[index]
        with pytest.raises(TypeError):
            event.data.pop("n")  # type: ignore[attr-defined]

    bus.subscribe("*", meddle)
    bus.subscribe("*", record)
    await bus.start()
    flat = {"n": 1, "s": "é", "f": 1.5, "none": None, "yes": True}
    nested = {"ids": (1, 2), "inner": {"k": [3]}, 7: "int key"}
    await bus.publish_many([Event("flat", flat), Event("nested", nested)])
    flat["n"] = 99  # the publisher's dict is its own after publishing
    await wait_for(lambda: len(seen) == 2)
    await bus.drain()
    assert dict(seen[0].data) == {"n": 1, "s": "é", "f": 1.5, "none": None, "yes": True}
    # tuples arrive as lists and keys as strings, on every backend
    assert dict(seen[1].data) == {"ids": [1, 2], "inner": {"k": [3]}, "7": "int key"}
    assert json.loads(json.dumps(seen[1].data)) == dict(seen[1].data)
    assert type(copy.deepcopy(seen[1].data)) is dict
    assert all(type(e.name) is str for e in seen)


async def test_an_unserializable_payload_is_refused(make_bus):
    bus = make_bus()
    await bus.start()
    with pytest.raises(BusError):
        await bus.publish(Event("x", {"when": datetime.now(UTC)}))
    with pytest.raises(BusError):
        await bus.publish_many([Event("x", {"n": 1}), Event("x", {"bad": object()})])
    await bus.publish_many([])  # nothing to send is not an error
