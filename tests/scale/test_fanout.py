"""Two web processes and a worker on one PostgreSQL and one Redis, in this test process:
each a socket.io server as `omnidesk serve --role web|worker` builds it, with real
python-socketio clients. A notice driven by a bus event reaches each browser exactly once;
a visitor's message, the collision notice and a worker's chat reply cross processes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from inbox.errors import RecipientAway
from inbox.events import EventName
from inbox.ports import Outbound
from inbox.types import Channel
from tests.channels.webchat.webchat_support import ORIGIN, Visitor, webchat_toml
from tests.conftest import write_config
from tests.scale.sockets import (
    AgentSocket,
    add_agent,
    empty_database,
    free_port,
    session_cookie,
    until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@dataclass
class Proc:
    services: Any
    runner: web.AppRunner | None = None
    url: str = ""


@pytest.fixture
async def cluster(tmp_path, postgres_database, redis_url):
    """`await cluster("web")` / `await cluster("worker")`: one more process's services."""
    from inbox import config as config_mod
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services

    await empty_database(postgres_database)
    extra = f'[redis]\nurl = "{redis_url}"\n' + webchat_toml(max_connections_per_ip=50)
    config = config_mod.load(
        write_config(tmp_path, extra, database_url=postgres_database), environ={}
    )
    procs: list[Proc] = []
    clients: list[Any] = []

    async def start(role: str) -> Proc:
        services = await build_services(config, role)
        proc = Proc(services)
        procs.append(proc)
        if role == "web":
            port = free_port()
            proc.runner = web.AppRunner(make_web_app(services), access_log=None)
            await proc.runner.setup()
            await web.TCPSite(proc.runner, "127.0.0.1", port).start()
            proc.url = f"http://127.0.0.1:{port}"
        return proc

    start.clients = clients  # type: ignore[attr-defined]
    yield start
    for client in clients:
        await client.disconnect()
    for proc in reversed(procs):
        if proc.runner is not None:
            await proc.runner.cleanup()
        await proc.services.close()


async def agent_socket(cluster, proc: Proc, agent_id: int) -> AgentSocket:
    sock = AgentSocket()
    cluster.clients.append(sock.sio)
    return await sock.connect(proc.url, await session_cookie(proc.services.store, agent_id))


async def visitor(cluster, proc: Proc, **auth: Any) -> Visitor:
    v = Visitor()
    cluster.clients.append(v.sio)
    await v.sio.connect(
        proc.url,
        headers={"Origin": ORIGIN},
        auth={"widget": "shop", **auth},
        namespaces=["/widget"],
        transports=["websocket"],
        wait_timeout=10,
    )
    return v


async def customer_message(proc: Proc, n: int) -> Any:
    from datetime import UTC, datetime

    from inbox.types import InboundMessage

    return await proc.services.ingest(
        InboundMessage(
            channel=Channel.API,
            external_id=f"fanout-{n}-{uuid.uuid4()}",
            sender=f"customer{n}@example.com",
            text=f"help {n}",
            received_at=datetime.now(UTC),
        )
    )


async def test_a_bus_notice_reaches_each_browser_exactly_once(cluster):
    web_a, web_b = await cluster("web"), await cluster("web")
    sue = await add_agent(web_a.services.store, "Sue", role="supervisor")
    on_a = await agent_socket(cluster, web_a, sue)
    on_b = await agent_socket(cluster, web_b, sue)
    results = [await customer_message(web_a, n) for n in range(3)]
    received = {r.message_id for r in results}

    def notices(sock: AgentSocket) -> list[int]:
        return [
            e["message_id"] for e in sock.got("event") if e["name"] == EventName.MESSAGE_RECEIVED
        ]

    for sock in (on_a, on_b):
        await until(lambda s=sock: set(notices(s)) == received, what="a notice on each process")
    await asyncio.sleep(0.5)  # a duplicate through the Redis manager would have come by now
    assert sorted(notices(on_a)) == sorted(notices(on_b)) == sorted(received)


async def test_viewers_across_processes(cluster):
    web_a, web_b = await cluster("web"), await cluster("web")
    ann = await add_agent(web_a.services.store, "Ann", role="supervisor")
    bob = await add_agent(web_a.services.store, "Bob", role="supervisor")
    cid = (await customer_message(web_a, 1)).conversation_id
    ann_sock = await agent_socket(cluster, web_a, ann)
    bob_sock = await agent_socket(cluster, web_b, bob)

    def last_viewers(sock: AgentSocket) -> list[tuple[int, bool]] | None:
        seen = [v for v in sock.got("viewers") if v["conversation_id"] == cid]
        return sorted((v["id"], v["typing"]) for v in seen[-1]["viewers"]) if seen else None

    assert (await ann_sock.call("view", {"conversation_id": cid}))["ok"]
    assert (await bob_sock.call("view", {"conversation_id": cid}))["ok"]
    both = [(ann, False), (bob, False)]
    await until(lambda: last_viewers(ann_sock) == last_viewers(bob_sock) == both, what="both")
    # typing on process B shows on process A
    assert (await bob_sock.call("typing", {"conversation_id": cid, "typing": True}))["ok"]
    await until(lambda: last_viewers(ann_sock) == [(ann, False), (bob, True)], what="typing")
    # Bob's socket goes: Ann (on the other process) sees only herself
    await bob_sock.sio.disconnect()
    await until(lambda: last_viewers(ann_sock) == [(ann, False)], what="bob gone")
    count = len(ann_sock.got("viewers"))
    await asyncio.sleep(0.3)
    assert len(ann_sock.got("viewers")) == count  # each change announced once


async def test_a_visitors_message_reaches_their_tab_on_the_other_process(cluster):
    web_a, web_b = await cluster("web"), await cluster("web")
    tab_a = await visitor(cluster, web_a)
    hello = await tab_a.hello()
    first = await tab_a.say(str(uuid.uuid4()), "first")
    assert first["ok"]
    tab_b = await visitor(cluster, web_b, token=hello["token"])
    assert [m["seq"] for m in (await tab_b.hello())["messages"]] == [first["seq"]]
    second = await tab_a.say(str(uuid.uuid4()), "second, seen on the other tab")
    await until(lambda: [m["seq"] for m in tab_b.pushed()] == [second["seq"]], what="tab b")
    await asyncio.sleep(0.3)
    assert [m["text"] for m in tab_b.pushed()] == ["second, seen on the other tab"]
    assert tab_a.pushed() == []  # never echoed to the tab that sent it


async def test_a_worker_emits_to_a_visitor_on_a_web_process_and_knows_when_they_left(cluster):
    web_b = await cluster("web")
    worker = await cluster("worker")
    assert worker.services.sio.manager.write_only  # no listener outside web processes
    sender = worker.services.senders["chat"]
    tab = await visitor(cluster, web_b)
    await tab.hello()
    ack = await tab.say(str(uuid.uuid4()), "anyone there?")
    token = await web_b.services.store.read(
        lambda c: c.execute(
            sa.text(
                "SELECT c.token FROM conversations c JOIN messages m ON m.conversation_id = c.id"
                " WHERE m.id = :id"
            ),
            {"id": ack["seq"]},
        ).scalar_one()
    )

    def reply(message_id: int, text: str) -> Outbound:
        return Outbound(
            message_id=message_id,
            conversation_id=0,
            channel="chat",
            to="visitor",
            text=text,
            conversation_token=token,
            from_name="Ann",
        )

    held = await sender.send(reply(10_001, "Hello from a worker"))  # not RecipientAway
    assert held == "webchat:10001"
    await until(lambda: [m["seq"] for m in tab.pushed()] == [10_001], what="the reply")
    assert tab.pushed()[0]["text"] == "Hello from a worker"
    await tab.sio.disconnect()
    await until(lambda: not web_b.services.sio.manager.rooms.get("/widget", {}).get(f"c:{token}"))
    with pytest.raises(RecipientAway):
        await sender.send(reply(10_002, "are you still there?"))


async def test_two_agents_claiming_at_once_on_two_web_processes_one_wins(cluster):
    """Issue 17: the same conversation claimed through web A and web B at once (each its
    own store on PostgreSQL): one 200, one 409 naming the holder; then an accept by the
    loser is refused too."""
    import aiohttp

    from inbox.store.tokens import create as create_token

    a, b = await cluster("web"), await cluster("web")
    ann = await add_agent(a.services.store, "Ann")
    bob = await add_agent(a.services.store, "Bob")
    token = await a.services.store.write(lambda c: create_token(c, "ownership"))
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        for n in range(5):
            cid = (await customer_message(a, 100 + n)).conversation_id

            async def claim(proc: Proc, agent_id: int, cid: int = cid) -> tuple[int, Any]:
                async with http.post(
                    f"{proc.url}/api/v1/conversations/{cid}/claim",
                    json={"agent_id": agent_id},
                    headers=auth,
                ) as resp:
                    return resp.status, await resp.json()

            answers = await asyncio.gather(claim(a, ann), claim(b, bob))
            assert sorted(s for s, _ in answers) == [200, 409], answers
            winner = next(body for s, body in answers if s == 200)["assignee_id"]
            loser = next(body for s, body in answers if s == 409)
            name = "Ann" if winner == ann else "Bob"
            assert loser["error"]["message"] == f"{name} already has this conversation"
            other = bob if winner == ann else ann
            status, _ = await claim(b, other)
            assert status == 409
