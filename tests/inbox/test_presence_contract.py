"""One contract for every socket-presence backend: in-process and Redis. With Redis, two
instances play two web processes sharing one Redis; a process that stops refreshing its
key (as a SIGKILLed one does) drops out after the TTL."""

from __future__ import annotations

import asyncio

import pytest

from inbox.bus.presence import MemoryPresence, RedisPresence, SocketPresence, open_presence
from inbox.errors import BusError


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make(request):
    made: list[SocketPresence] = []
    shared: list[SocketPresence] = []

    async def factory(**options) -> SocketPresence:
        """A presence as one process sees it (memory: every call shares one process)."""
        if request.param == "memory":
            if not shared:
                shared.append(MemoryPresence())
            return shared[0]
        presence = RedisPresence(request.getfixturevalue("redis_url"), **options)
        await presence.start()
        made.append(presence)
        return presence

    factory.backend = request.param
    yield factory
    for presence in made:
        await presence.close()


async def test_agent_sockets_are_counted_over_processes(make):
    web_a, web_b, router = await make(), await make(), await make()
    assert await router.agent_sockets() == {}
    await web_a.agent_connected(7)
    await web_b.agent_connected(7)
    await web_b.agent_connected(8)
    assert await router.agent_sockets() == {7: 2, 8: 1}
    await web_a.agent_disconnected(7)
    await web_b.agent_disconnected(8)
    # 8 had a socket and has none: reported with 0 until the router forgets it
    assert await router.agent_sockets() == {7: 1, 8: 0}
    await router.forget_agents([8])
    assert await router.agent_sockets() == {7: 1}
    await router.forget_agents([7])  # still connected: forgetting does not hide it
    assert await router.agent_sockets() == {7: 1}


async def test_visitor_rooms(make):
    web_a, web_b, worker = await make(), await make(), await make()
    assert not await worker.room_occupied("c:tok1")
    await web_a.room_joined("c:tok1")
    await web_b.room_joined("c:tok1")
    assert await worker.room_occupied("c:tok1")
    assert not await worker.room_occupied("c:tok2")
    await web_a.room_left("c:tok1")
    assert await worker.room_occupied("c:tok1")
    await web_b.room_left("c:tok1")
    assert not await worker.room_occupied("c:tok1")


async def test_viewers_of_a_conversation(make):
    web_a, web_b = await make(), await make()
    await web_a.set_viewer(42, "s1", {"id": 1, "name": "Ann", "typing": False})
    await web_b.set_viewer(42, "s2", {"id": 2, "name": "Bob", "typing": False})
    await web_b.set_viewer(43, "s3", {"id": 2, "name": "Bob", "typing": False})
    await web_b.set_viewer(42, "s2", {"id": 2, "name": "Bob", "typing": True})

    def by_id(viewers):
        return sorted(viewers, key=lambda v: v["id"])

    expected = [
        {"id": 1, "name": "Ann", "typing": False},
        {"id": 2, "name": "Bob", "typing": True},
    ]
    assert by_id(await web_a.viewers(42)) == by_id(await web_b.viewers(42)) == expected
    await web_a.drop_viewer(42, "s1")
    await web_a.drop_viewer(42, "unknown-sid")
    assert await web_a.viewers(42) == [{"id": 2, "name": "Bob", "typing": True}]
    await web_b.drop_viewer(42, "s2")
    assert await web_a.viewers(42) == []
    assert await web_a.viewers(43) == [{"id": 2, "name": "Bob", "typing": False}]


@pytest.mark.redis
async def test_a_process_that_stops_refreshing_drops_out_after_the_ttl(redis_url):
    # a TTL of 1.5 s (refreshed every 0.375 s): a loaded machine can delay a refresh by a
    # few hundred ms, which a 0.6 s TTL did not survive
    crashed = RedisPresence(redis_url, ttl=1.5)
    survivor = RedisPresence(redis_url, ttl=1.5)
    await crashed.start()
    await survivor.start()
    try:
        await crashed.agent_connected(5)
        await survivor.agent_connected(6)
        await crashed.room_joined("c:gone")
        await crashed.set_viewer(9, "sx", {"id": 5, "name": "Eve", "typing": False})
        await survivor.set_viewer(9, "sy", {"id": 6, "name": "Sam", "typing": False})
        await asyncio.sleep(2.0)  # both keep refreshing past the TTL
        assert await survivor.agent_sockets() == {5: 1, 6: 1}
        assert await survivor.room_occupied("c:gone")
        assert len(await survivor.viewers(9)) == 2
        # "SIGKILL": the heartbeat stops and nothing is cleaned up
        assert crashed._beat is not None
        crashed._beat.cancel()
        await asyncio.sleep(2.0)  # the TTL after its last refresh, and a margin
        assert await survivor.agent_sockets() == {5: 0, 6: 1}  # 5 had sockets: now none
        assert not await survivor.room_occupied("c:gone")
        assert await survivor.viewers(9) == [{"id": 6, "name": "Sam", "typing": False}]
    finally:
        crashed._beat = None
        await crashed.close()
        await survivor.close()


@pytest.mark.redis
async def test_a_clean_close_removes_the_process_at_once(redis_url):
    web = RedisPresence(redis_url)
    reader = RedisPresence(redis_url)
    await web.start()
    await web.agent_connected(3)
    await web.set_viewer(4, "s", {"id": 3, "name": "Al", "typing": False})
    await web.close()
    try:
        assert await reader.agent_sockets() == {3: 0}
        assert await reader.viewers(4) == []
    finally:
        await reader.close()


@pytest.mark.redis
async def test_the_heartbeat_rewrites_a_lost_key(redis_url):
    import redis.asyncio as aioredis

    web = RedisPresence(redis_url, ttl=0.4)
    await web.start()
    r = aioredis.Redis.from_url(redis_url)
    try:
        await web.agent_connected(11)
        await r.flushdb()  # e.g. Redis restarted without persistence
        assert await web.agent_sockets() == {}
        await asyncio.sleep(0.3)
        assert await web.agent_sockets() == {11: 1}
    finally:
        await r.aclose()
        await web.close()


async def test_redis_errors_are_bus_errors(unused_tcp_port):
    presence = RedisPresence(f"redis://127.0.0.1:{unused_tcp_port}/0")
    try:
        with pytest.raises(BusError):
            await presence.agent_connected(1)
        with pytest.raises(BusError):
            await presence.agent_sockets()
    finally:
        await presence.close()


def test_one_resolver():
    assert isinstance(open_presence(None), MemoryPresence)
    assert isinstance(open_presence("memory://"), MemoryPresence)
    assert isinstance(open_presence("redis://127.0.0.1:6379/0"), RedisPresence)
    with pytest.raises(BusError):
        open_presence("kafka://x")
