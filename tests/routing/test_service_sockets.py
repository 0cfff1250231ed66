"""The router reads agents' socket counts from `inbox.bus.presence` (in-process or Redis): an
agent with a socket left stays; with none past the grace, offline and chats re-queued; a
router taking over starts from the live counts; a web process that stops refreshing its
Redis key (killed) takes its agents' sockets with it."""

from __future__ import annotations

import asyncio

import pytest

from inbox.bus.presence import MemoryPresence, RedisPresence
from inbox.events import Event, EventName
from routing.service import RouterService
from routing.settings import RoutingSettings

GRACE = 0.3


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def presences(request):
    """(web process's presence, router process's presence)."""
    if request.param == "memory":
        shared = MemoryPresence()
        yield shared, shared
        return
    url = request.getfixturevalue("redis_url")
    web, router = RedisPresence(url, ttl=0.6), RedisPresence(url)
    await web.start()
    await router.start()
    yield web, router
    await web.close()
    await router.close()


async def start_router(desk, sockets) -> RouterService:
    settings = RoutingSettings(accept_timeout_seconds=0, offline_grace_seconds=GRACE)
    desk.service = RouterService(desk.store, desk.bus, settings, sockets=sockets)
    await desk.service.start()
    await desk.settle()
    return desk.service


async def socket_change(desk, web, agent_id: int, connected: bool) -> None:
    """As the /agent namespace does: record it in presence, then announce it."""
    if connected:
        await web.agent_connected(agent_id)
    else:
        await web.agent_disconnected(agent_id)
    await desk.bus.publish(
        Event(EventName.AGENT_CONNECTION, {"agent_id": agent_id, "connected": connected})
    )
    await desk.settle()


async def test_offline_only_when_the_last_socket_is_gone(desk, presences):
    web, reader = presences
    await start_router(desk, reader)
    ann = await desk.agent("ann", capacity={"chat": 3})
    chats = {await desk.message(), await desk.message()}
    assert set(await desk.assigned()) == chats
    await socket_change(desk, web, ann, True)
    await socket_change(desk, web, ann, True)
    await socket_change(desk, web, ann, False)
    await asyncio.sleep(GRACE + 1.2)  # past the grace and a periodic re-read
    await desk.settle()
    assert set(await desk.assigned()) == chats  # one socket left: still hers
    await socket_change(desk, web, ann, False)

    def offline_announced() -> set[int]:
        return {e["agent_id"] for e in desk.named("agent.presence") if e.get("source")}

    async def requeued() -> bool:
        # the requeue is written first and announced after: both, before looking closer
        return not await desk.assigned() and bool(offline_announced())

    await desk.wait_for(requeued)
    assert offline_announced() == {ann}
    assert await reader.agent_sockets() == {}  # forgotten once offline


async def test_a_router_taking_over_starts_from_the_live_counts(desk, presences):
    web, reader = presences
    await start_router(desk, reader)
    ann = await desk.agent("ann", capacity={"chat": 3})
    chat = await desk.message()
    await socket_change(desk, web, ann, True)
    await socket_change(desk, web, ann, True)
    await desk.service.close()  # the leader goes; another router process takes over
    await start_router(desk, reader)
    await socket_change(desk, web, ann, False)  # counted from 0 this would be "none left"
    await asyncio.sleep(GRACE + 1.2)
    await desk.settle()
    assert await desk.assigned() == {chat: ann}
    await socket_change(desk, web, ann, False)

    async def requeued() -> bool:
        return not await desk.assigned()

    await desk.wait_for(requeued)


@pytest.mark.redis
async def test_a_killed_web_process_takes_its_agents_sockets_along(desk, redis_url):
    web = RedisPresence(redis_url, ttl=0.6)
    reader = RedisPresence(redis_url)
    await web.start()
    try:
        await start_router(desk, reader)
        ann = await desk.agent("ann", capacity={"chat": 3})
        chat = await desk.message()
        await socket_change(desk, web, ann, True)
        await asyncio.sleep(0.8)
        assert await desk.assigned() == {chat: ann}
        assert web._beat is not None
        web._beat.cancel()  # kill -9: no disconnect, no cleanup; the key just expires

        async def requeued() -> bool:
            return not await desk.assigned()

        await desk.wait_for(requeued, within=0.6 + GRACE + 3)
    finally:
        web._beat = None
        await web.close()
        await reader.close()
