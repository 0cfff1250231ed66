"""Two router processes on one Redis and one PostgreSQL: kill -9 the active one under load.
The standby takes over; no conversation is lost, none is assigned twice, no agent is ever
over capacity."""

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

from tests.conftest import SECRET, write_config
from tests.test_crash import free_port, omnidesk, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

AGENTS = 8
CAPACITY = 3
MESSAGES = 240
LEASE_KEY = "{omnidesk:lease}:router"


def serve(config: str, role: str, log: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve", "--role", role],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def holder(r: aioredis.Redis) -> int | None:
    raw = await r.get(LEASE_KEY)
    return None if raw is None else int(raw.decode().rsplit(":", 1)[1])


async def test_kill_the_active_router_under_load(tmp_path, postgres_database, redis_url):
    pg = postgres_database.replace("postgresql+asyncpg://", "postgresql://")
    db = await asyncpg.create_pool(pg, min_size=1, max_size=4)
    await db.execute(
        "TRUNCATE outbox, assignments, messages, conversations, identities, contacts, agents,"
        " api_tokens, cursors RESTART IDENTITY CASCADE"
    )
    port = free_port()
    config = write_config(
        tmp_path,
        f'[redis]\nurl = "{redis_url}"\n[routing]\naccept_timeout_seconds = 0\n',
        database_url=postgres_database,
    )
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("port = 0", f"port = {port}"))
    token = omnidesk("token", "create", "failover", config=config).stdout.strip()
    for n in range(AGENTS):
        omnidesk(
            "agent", "add", "--name", f"a{n}", "--email", f"a{n}@example.com",
            "--capacity", f"api:{CAPACITY}", "--password", "pw-123456789",
            config=config,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    r = aioredis.Redis.from_url(redis_url)
    logs = [str(tmp_path / f"{name}.log") for name in ("web", "router1", "router2", "worker")]
    web = serve(config, "web", logs[0])
    routers = [serve(config, "router", logs[1]), serve(config, "router", logs[2])]
    # with Redis, triage (which queues conversations for the router) runs in workers only
    procs = [web, *routers, serve(config, "worker", logs[3])]
    over_capacity: list[tuple[int, int]] = []
    try:
        await wait_ready(url, web, logs[0])
        deadline = time.monotonic() + 20
        while await holder(r) not in {p.pid for p in routers}:
            assert time.monotonic() < deadline, "no router took the lease"
            await asyncio.sleep(0.1)
        first = await holder(r)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for n in range(1, AGENTS + 1):
                async with http.put(
                    f"{url}/api/v1/agents/{n}/presence",
                    json={"presence": "online"},
                    headers=headers,
                ) as resp:
                    assert resp.status == 200

            sent = 0
            stop = asyncio.Event()

            async def feed(k: int) -> None:
                nonlocal sent
                for i in range(MESSAGES // 8):
                    async with http.post(
                        f"{url}/api/v1/messages",
                        json={"sender": f"c{k}-{i}@example.com", "text": "help"},
                        headers={**headers, "Idempotency-Key": f"{k}-{i}"},
                    ) as resp:
                        assert resp.status == 201, await resp.text()
                        sent += 1
                    await asyncio.sleep(0.01)

            async def work() -> None:
                """Agents finish conversations (resolve through the API); capacity sampled."""
                while not stop.is_set():
                    for agent_id, count in await db.fetch(
                        "SELECT assignee_id, count(*) FROM conversations WHERE assignee_id IS NOT"
                        " NULL AND status IN ('open', 'pending') GROUP BY assignee_id"
                    ):
                        if count > CAPACITY:
                            over_capacity.append((agent_id, count))
                    rows = await db.fetch(
                        "SELECT id FROM conversations WHERE assignee_id IS NOT NULL AND"
                        " status = 'open' ORDER BY assigned_at LIMIT 3"
                    )
                    for row in rows:
                        async with http.post(
                            f"{url}/api/v1/conversations/{row['id']}/resolve", headers=headers
                        ) as resp:
                            assert resp.status in (200, 409)
                    await asyncio.sleep(0.1)

            feeders = [asyncio.create_task(feed(k)) for k in range(8)]
            worker = asyncio.create_task(work())
            while sent < MESSAGES // 3:
                await asyncio.sleep(0.02)
            # triage runs in the worker first: on a loaded machine (the suite runs in
            # parallel) the first assignments may trail the posts by a few seconds
            deadline = time.monotonic() + 30
            while not (assigned_before := await db.fetchval("SELECT count(*) FROM assignments")):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert assigned_before > 0, "the first router assigned nothing"
            victim = next(p for p in routers if p.pid == first)
            victim.send_signal(signal.SIGKILL)  # under load: messages and resolves in flight
            victim.wait(10)
            killed_at = time.monotonic()
            survivor = next(p for p in routers if p is not victim)
            while await holder(r) != survivor.pid:
                assert time.monotonic() - killed_at < 15, "the standby did not take over"
                await asyncio.sleep(0.05)
            takeover = time.monotonic() - killed_at
            await asyncio.gather(*feeders)
            # every conversation is eventually assigned, while agents keep working
            deadline = time.monotonic() + 60
            while True:
                unrouted = await db.fetchval(
                    "SELECT count(*) FROM conversations c WHERE NOT EXISTS"
                    " (SELECT 1 FROM assignments a WHERE a.conversation_id = c.id)"
                )
                if unrouted == 0:
                    break
                assert survivor.poll() is None, "the surviving router exited"
                if time.monotonic() > deadline:  # diagnostics for the failure below
                    print(await db.fetch("SELECT id, presence FROM agents"))
                    print(await db.fetch("SELECT * FROM cursors"))
                assert time.monotonic() < deadline, f"{unrouted} conversations never assigned"
                await asyncio.sleep(0.2)
            stop.set()
            await worker
        total = await db.fetchval("SELECT count(*) FROM conversations")
        assert total == MESSAGES == sent
        # none assigned twice: at most one open assignment row per conversation, and the
        # rows of one conversation never overlap in time
        double = await db.fetch(
            "SELECT conversation_id FROM assignments WHERE ended_at IS NULL"
            " GROUP BY conversation_id HAVING count(*) > 1"
        )
        assert not double
        overlaps = await db.fetchval(
            "SELECT count(*) FROM assignments a JOIN assignments b ON a.conversation_id ="
            " b.conversation_id AND a.id < b.id WHERE a.ended_at IS NULL OR a.ended_at >"
            " b.assigned_at"
        )
        assert overlaps == 0
        # the open rows agree with the conversations table
        mismatched = await db.fetchval(
            "SELECT count(*) FROM assignments a JOIN conversations c ON c.id = a.conversation_id"
            " WHERE a.ended_at IS NULL AND (c.assignee_id IS DISTINCT FROM a.agent_id)"
        )
        assert mismatched == 0
        assert not over_capacity
        loads = await db.fetch(
            "SELECT agent_id, count(*) AS n FROM assignments WHERE ended_at IS NULL GROUP BY agent_id"
        )
        assert all(row["n"] <= CAPACITY for row in loads)
        fence = await db.fetchval("SELECT position FROM cursors WHERE source = 'routing.leader'")
        assert int(fence) >= 2  # the survivor fenced the dead leader out
        assert takeover < 10
        print(f"takeover after kill -9: {takeover:.2f} s; {total} conversations routed")
    finally:
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
    survivor_log = Path(logs[1 + routers.index(survivor)]).read_text()
    assert survivor.returncode == 0, survivor_log[-3000:]
    assert "elected leader" in survivor_log and "router rebuilt" in survivor_log
