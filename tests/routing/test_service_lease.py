"""Leadership in-process: a real Redis lease, a real store. A leader fenced out by a newer
one writes nothing and stands by; the next leader (higher token) rebuilds and routes."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from inbox.store import fence
from routing.lease import RedisLease
from routing.service import RouterService
from routing.settings import RoutingSettings

pytestmark = pytest.mark.redis


async def until(check, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_a_fenced_leader_writes_nothing_and_a_newer_leader_routes(desk, redis_url):
    settings = RoutingSettings(accept_timeout_seconds=0)
    first = RouterService(
        desk.store, desk.bus, settings, lease=RedisLease(redis_url, "first", ttl=2.0)
    )
    second = RouterService(
        desk.store, desk.bus, settings, lease=RedisLease(redis_url, "second", ttl=2.0)
    )
    await first.start()
    await until(lambda: first.active)
    desk.service = first  # desk.settle() waits for it
    await second.start()
    await first.idle()
    assert not second.active
    agent = await desk.agent("ann", presence="offline")
    conv = await desk.message()
    assert await desk.waiting() == {conv}
    assert first.router is not None and first.router.waiting_count == 1
    assert second.router is None  # a standby keeps no state

    # a newer leader took a token and recorded it (as while first paused past its lease)
    assert first.token is not None
    client = aioredis.Redis.from_url(redis_url)
    newer = int(await client.incr("{omnidesk:lease}:router:fence"))
    await client.aclose()
    assert await desk.store.write(lambda conn: fence.claim(conn, newer))
    await desk.presence(agent, "online")  # first decides to assign ...
    await first.idle()
    await until(lambda: not first.active)  # ... the fence refuses: it stands by
    assert "conversation.assigned" not in {e.name for e in desk.events}
    assert await desk.open_rows() == []
    # first released the lease; whoever takes it next has a higher token and routes
    await until(lambda: first.active or second.active)
    leader = first if first.active else second
    assert leader.token is not None and leader.token > newer
    desk.service = leader

    async def routed() -> bool:
        return await desk.assigned() == {conv: agent}

    await desk.wait_for(routed)
    assert leader.rebuilds == (2 if leader is first else 1)
    assert await desk.open_rows() == [(conv, agent)]
    await first.close()
    await second.close()
    desk.service = None


async def test_a_router_leads_again_after_redis_lost_its_fencing_counter(desk, redis_url):
    """A Redis restarted without its data counts tokens from 1 again, below the token the
    database holds: the router advances the counter past it instead of standing by until
    the counter catches up (one election per ttl/3)."""
    assert await desk.store.write(lambda conn: fence.claim(conn, 50))
    settings = RoutingSettings(accept_timeout_seconds=0)
    router = RouterService(
        desk.store, desk.bus, settings, lease=RedisLease(redis_url, "after-wipe", ttl=2.0)
    )
    await router.start()
    desk.service = router
    try:
        await until(lambda: router.active, within=5.0)
        assert router.token is not None and router.token > 50
    finally:
        await router.close()
