"""Real processes on one PostgreSQL and one Redis: two `web`, two `router` (one active),
one `worker` (triage).

* each browser gets each notice exactly once, whichever web process it is connected to;
* kill -9 the web process an agent is connected to: its presence key expires, the agent
  goes offline after the grace period and its conversations go back to the queue;
* kill -9 the active router: the one taking over reads the agents' socket counts from
  Redis (an agent with two sockets who closes one stays online; closing both, offline).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from inbox.bus.presence import DEFAULT_TTL
from inbox.events import EventName
from inbox.store.backends import open_store
from inbox.store.tokens import create as create_token
from tests.conftest import SECRET, write_config
from tests.scale.sockets import (
    AgentSocket,
    add_agent,
    empty_database,
    free_port,
    session_cookie,
    until,
)
from tests.test_crash import wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]

GRACE = 1.0
LEASE_KEY = "{omnidesk:lease}:router"


def serve(config: str, role: str, log: str, *sets: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    cmd = [sys.executable, "-m", "omnidesk.cli", "--config", config]
    for item in sets:
        cmd += ["--set", item]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*cmd, "serve", "--role", role], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def wait_until(check, timeout: float, what: str) -> float:
    """Poll an async check; seconds it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, f"timed out: {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_sockets_presence_and_failover_across_processes(
    tmp_path, postgres_database, redis_url
):
    await empty_database(postgres_database)
    config = write_config(
        tmp_path,
        f'[redis]\nurl = "{redis_url}"\n'
        f"[routing]\naccept_timeout_seconds = 0\noffline_grace_seconds = {GRACE}\n",
        database_url=postgres_database,
    )
    store = open_store(postgres_database)
    db = await asyncpg.connect(postgres_database.replace("postgresql+asyncpg://", "postgresql://"))
    r = aioredis.Redis.from_url(redis_url)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    names = ("web_a", "web_b", "router1", "router2", "worker")
    logs = {n: str(tmp_path / f"{n}.log") for n in names}
    web_a = serve(config, "web", logs["web_a"], f"server.port={ports[0]}")
    web_b = serve(config, "web", logs["web_b"], f"server.port={ports[1]}")
    routers = [serve(config, "router", logs["router1"]), serve(config, "router", logs["router2"])]
    procs = [web_a, web_b, *routers, serve(config, "worker", logs["worker"])]
    sockets: list[AgentSocket] = []

    async def connect(url: str, agent_id: int) -> AgentSocket:
        sock = AgentSocket()
        sockets.append(sock)
        return await sock.connect(url, await session_cookie(store, agent_id))

    async def holder() -> int | None:
        raw = await r.get(LEASE_KEY)
        return None if raw is None else int(raw.decode().rsplit(":", 1)[1])

    async def presence(agent_id: int) -> str:
        return str(await db.fetchval("SELECT presence FROM agents WHERE id = $1", agent_id))

    try:
        await wait_ready(urls[0], web_a, logs["web_a"])
        await wait_ready(urls[1], web_b, logs["web_b"])
        await wait_until(
            lambda: _in(holder(), {p.pid for p in routers}), 20, "a router took the lease"
        )
        sue = await add_agent(store, "Sue", role="supervisor", api=0)
        xena = await add_agent(store, "Xena", api=5)
        yuri = await add_agent(store, "Yuri", api=5)
        token = await store.write(lambda c: create_token(c, "presence-test"))
        headers = {"Authorization": f"Bearer {token}"}
        sue_a, sue_b = await connect(urls[0], sue), await connect(urls[1], sue)
        xena_b = await connect(urls[1], xena)
        yuri_1, yuri_2 = await connect(urls[0], yuri), await connect(urls[0], yuri)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

            async def set_presence(agent_id: int, value: str) -> None:
                async with http.put(
                    f"{urls[0]}/api/v1/agents/{agent_id}/presence",
                    json={"presence": value},
                    headers=headers,
                ) as resp:
                    assert resp.status == 200, await resp.text()

            await set_presence(xena, "online")
            await set_presence(yuri, "away")
            conversations, messages = [], []
            for n in range(2):
                async with http.post(
                    f"{urls[0]}/api/v1/messages",
                    json={"sender": f"c{n}@example.com", "text": f"help {n}"},
                    headers={**headers, "Idempotency-Key": f"presence-{n}"},
                ) as resp:
                    assert resp.status == 201, await resp.text()
                    body = await resp.json()
                    conversations.append(body["conversation_id"])
                    messages.append(body["message_id"])

            async def assigned_to_xena() -> bool:
                rows = await db.fetch("SELECT id FROM conversations WHERE assignee_id = $1", xena)
                return sorted(row["id"] for row in rows) == sorted(conversations)

            await wait_until(assigned_to_xena, 15, "both conversations assigned to Xena")

            # 1. each notice once per browser, on either web process
            def received(sock: AgentSocket) -> list[int]:
                return sorted(
                    e["message_id"]
                    for e in sock.got("event")
                    if e["name"] == EventName.MESSAGE_RECEIVED
                )

            for sock in (sue_a, sue_b):
                await until(lambda s=sock: set(received(s)) == set(messages), what="notices")
            await until(
                lambda: (
                    {a["conversation_id"] for a in xena_b.got("assigned")} == set(conversations)
                ),
                what="Xena (on web B) told of her assignments",
            )
            await asyncio.sleep(1.0)
            assert received(sue_a) == received(sue_b) == sorted(messages)
            assert sorted(a["conversation_id"] for a in xena_b.got("assigned")) == sorted(
                conversations
            )

            # 2. kill -9 web B: Xena's socket dies with it; nothing says "disconnected"
            web_b.send_signal(signal.SIGKILL)
            web_b.wait(10)

            async def xena_offline_and_requeued() -> bool:
                held = await db.fetchval(
                    "SELECT count(*) FROM conversations WHERE assignee_id = $1", xena
                )
                return held == 0 and await presence(xena) == "offline"

            took = await wait_until(
                xena_offline_and_requeued, DEFAULT_TTL + GRACE + 10, "Xena offline, chats back"
            )
            assert took > GRACE  # not before her sockets were gone for the grace period
            waiting = await db.fetchval(
                "SELECT count(*) FROM conversations WHERE id = ANY($1::bigint[])"
                " AND assignee_id IS NULL AND status = 'open'",
                conversations,
            )
            assert waiting == 2  # back in the queue (Yuri is away: nobody takes them)
            assert await presence(yuri) == "away"

            # 3. kill -9 the active router; the standby takes over with Yuri's 2 sockets
            first = await holder()
            victim = next(p for p in routers if p.pid == first)
            survivor = next(p for p in routers if p is not victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            await wait_until(lambda: _is(holder(), survivor.pid), 15, "the standby took the lease")
            survivor_log = logs["router1" if survivor is routers[0] else "router2"]
            await wait_until(
                lambda: _logged(survivor_log, "router rebuilt"), 10, "the new leader rebuilt"
            )
            await yuri_1.sio.disconnect()  # one of two: Yuri still has a socket
            await asyncio.sleep(GRACE + 3)
            assert await presence(yuri) == "away"
            await yuri_2.sio.disconnect()  # the last one
            await wait_until(lambda: _eq(presence(yuri), "offline"), GRACE + 10, "Yuri offline")
    finally:
        for sock in sockets:
            await sock.sio.disconnect()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        await r.aclose()
        await db.close()
        await store.close()
    assert web_a.returncode == 0, Path(logs["web_a"]).read_text()[-3000:]


async def _in(value, allowed) -> bool:
    return await value in allowed


async def _is(value, expected) -> bool:
    return await value == expected


async def _eq(value, expected) -> bool:
    return await value == expected


async def _logged(path: str, text: str) -> bool:
    return text in Path(path).read_text()
