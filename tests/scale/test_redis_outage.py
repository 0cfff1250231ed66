"""A Redis outage heals by itself, in the local cluster (scripts/cluster: 2 web, 1 router,
2 workers, 1 smtp on PostgreSQL and a Redis the test starts and kills; issue 15).

Redis is killed (SIGKILL) for 15 s and started again empty on the same port, no process of
the cluster restarted: every request made during the outage is answered, an agent's reply
sent during it is answered from its commit (not 503) and its resend under the same
Idempotency-Key reaches the customer once, and within 10 s of Redis returning a new
conversation is assigned and the agent's socket gets its notice (and a "resync").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import aiohttp
import pytest

from tests.processes import Relay, until
from tests.redis_server import RedisServer, own_redis  # noqa: F401 (a fixture)
from tests.scale.test_cluster import (  # noqa: F401 (cluster is a fixture)
    PASSWORD,
    AgentClient,
    cluster,
    send_mail,
    sql,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

OUTAGE = 15.0


@pytest.fixture
def redis_url(own_redis: RedisServer) -> Iterator[str]:  # noqa: F811
    """The cluster's Redis: the test's own server, not the shared one."""
    yield own_redis.url(0)


async def test_a_redis_outage_heals_without_restarting_anything(
    cluster: Any,  # noqa: F811
    own_redis: RedisServer,  # noqa: F811
    relay: tuple[Relay, int],
) -> None:
    sink, _ = relay
    web_a, web_b = cluster.web_urls
    cluster.run(
        "agent", "add", "--name", "Ada Lovelace", "--email", "ada@desk.test",
        "--password", PASSWORD, "--skills", "english:9", "--capacity", "api:100,email:10",
    )  # fmt: skip
    token = cluster.run("token", "create", "outage").strip()
    agent = AgentClient(web_b)
    resyncs: list[float] = []
    resynced: list[float] = []  # wall-clock times, to compare with commit times
    agent.sio.on(
        "resync",
        lambda _data: (resyncs.append(time.monotonic()), resynced.append(time.time())),
        namespace="/agent",
    )
    pids = {name: proc.popen.pid for name, proc in cluster.procs.items()}

    async def post_api(session: aiohttp.ClientSession, n: int, base: str) -> int:
        async with session.post(
            base + "/api/v1/messages",
            json={"sender": f"c{n}@example.com", "text": f"message {n}", "subject": f"n{n}"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"out-{n}"},
            timeout=aiohttp.ClientTimeout(total=20),
        ) as resp:
            return resp.status

    try:
        await agent.sign_in("ada@desk.test")
        await agent.post("/agent/api/presence", {"presence": "online"})
        # before: an email, assigned to the agent, to answer during the outage
        await asyncio.to_thread(
            send_mail, cluster.smtp_port, "grace@example.org", "Invoice copy",
            "Could you send me a copy of invoice 77?", "<inv-77@example.org>",
        )  # fmt: skip
        await until(lambda: agent.assigned(), what="the email assigned to the agent")
        mail_id = agent.assigned()[0]

        own_redis.kill()
        killed = time.monotonic()

        # during: requests through both web processes, all answered
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(
                *(post_api(session, n, (web_a, web_b)[n % 2]) for n in range(40)),
                return_exceptions=True,
            )
        unanswered = [s for s in statuses if not isinstance(s, int)]
        assert not unanswered, unanswered
        assert all(s in (201, 503) for s in statuses), statuses  # type: ignore[operator]
        committed = sum(s == 201 for s in statuses)  # type: ignore[misc]

        # the agent's reply: committed, so answered as such; the page's resend (same key)
        # is answered the same and does nothing twice
        key = uuid.uuid4().hex
        path = f"{agent.base}/agent/api/conversations/{mail_id}/reply"
        answers = []
        for _attempt in range(2):
            async with agent.http.post(
                path,
                json={"text": "Here is invoice 77."},
                headers={**agent._auth(), "Idempotency-Key": key},
            ) as resp:
                answers.append((resp.status, await resp.json()))
        assert [status for status, _ in answers] == [200, 200], answers
        assert answers[0][1]["message_id"] == answers[1][1]["message_id"]

        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - killed)))
        assert agent.sio.connected  # the agent's socket never depended on Redis
        own_redis.start()
        back = time.monotonic()

        # after: a new conversation is assigned and the agent hears it within 10 s
        seen = len(agent.assigned())
        async with aiohttp.ClientSession() as session:
            while True:
                status = await post_api(session, 1000, web_a)
                if status == 201:
                    break
                assert time.monotonic() - back < 10, "the API did not take the new message"
                await asyncio.sleep(0.2)
        rows = await sql(
            cluster.database_url,
            "SELECT conversation_id FROM messages WHERE channel = 'api' AND external_id = $1",
            "out-1000",
        )
        new_id = rows[0]["conversation_id"]

        async def noticed() -> bool:
            """The agent's socket got the assignment's notice; or, if its web process was
            still reconnecting when the router announced it, a "resync" after it was
            committed (the page re-reads its queue and finds it there)."""
            if new_id in agent.assigned()[seen:]:
                return True
            got = await sql(
                cluster.database_url,
                "SELECT assigned_at FROM assignments WHERE conversation_id = $1",
                new_id,
            )
            if not got:
                return False
            at = got[0]["assigned_at"].replace(tzinfo=UTC).timestamp()
            return any(r >= at for r in resynced)

        try:
            heard = await until(noticed, 10, what="the new assignment's notice")
        except AssertionError as exc:
            logs = {n: cluster.log_of(n)[-4000:] for n in ("router1", "web2", "worker1")}
            raise AssertionError(f"{exc}\n{logs}") from None
        assert heard - back < 10
        assert resyncs and resyncs[0] - back < 10  # the page was told to re-read its queue
        queue = await (
            await agent.http.get(agent.base + "/agent/api/queue", headers=agent._auth())
        ).json()
        assert new_id in [c["id"] for c in queue["mine"]], queue["mine"]

        # what was committed during the outage is triaged and assigned, without a restart
        async def all_assigned() -> bool:
            got = await sql(
                cluster.database_url,
                "SELECT count(*) AS n, count(assignee_id) AS assigned FROM conversations "
                "WHERE channel = 'api'",
            )
            return bool(got[0]["n"] == got[0]["assigned"] == committed + 1)

        await until(all_assigned, 30, what=f"the {committed} outage conversations assigned")

        # the reply reached the customer once
        await until(lambda: sink.count("invoice 77"), 90, what="the reply at the relay")
        await asyncio.sleep(3.0)
        assert sink.count("invoice 77") == 1
        replies = await sql(
            cluster.database_url,
            "SELECT count(*) AS n FROM messages WHERE conversation_id = $1 "
            "AND direction = 'outbound'",
            mail_id,
        )
        assert replies[0]["n"] == 1

        # and nothing was restarted
        assert all(cluster.alive().values()), cluster.alive()
        assert {name: proc.popen.pid for name, proc in cluster.procs.items()} == pids
    finally:
        await agent.close()
