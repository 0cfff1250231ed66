"""The local cluster (scripts/cluster: 2 web, 1 router, 2 workers, 1 smtp on PostgreSQL and
Redis), used as people use it: real processes, real sockets, real SMTP.

1. A chat arrives through web process A; the agent signed in on web process B gets it
   live, exactly once; the agent's answer reaches the visitor on A; the agent's reply to an
   email conversation is delivered to the relay by a worker.
2. kill -9 a web process, the router and a worker during a stream of messages: nothing
   acknowledged is lost, nothing is stored twice, every reply is sent under one
   Message-ID (a resend after a crash in SMTP's window repeats it), no conversation is
   ever held by two agents at once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import smtplib
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from inbox.store.databases import drop_database
from omnidesk.cluster import Cluster
from tests.conftest import POSTGRES_URL, SECRET, require_server
from tests.processes import Relay, until
from tests.test_crash import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ORIGIN = "http://shop.example"
PASSWORD = "correct horse battery staple"
RULES = """
[templates.ack]
subject = "Re: {{ message.subject }}"
text = "Thanks, we received your message (ack)."

[[rule]]
name = "acknowledge-email"
when = { channel = ["email"], subject_any = ["ack me"] }
then = { reply = "ack", stop = false }
"""


@pytest.fixture
async def cluster(tmp_path: Path, redis_url: str, relay: tuple[Relay, int]) -> AsyncIterator[Any]:
    _, relay_port = relay
    smtp_port = free_port()
    (tmp_path / "rules.toml").write_text(RULES)
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[server]\nport = 8080\nlog_level = "INFO"\n'
        '[email]\ndomain = "desk.test"\ninstance = "desk-test"\n'
        f'[email.relay]\nhost = "127.0.0.1"\nport = {relay_port}\ntls = "none"\n'
        f'[smtp]\nport = {smtp_port}\n[smtp.recipients]\n"support@desk.test" = "default"\n'
        '[autoreply]\nrules = ["rules.toml"]\nfaq = []\ninstance_id = "desk-test"\n'
        'own_domains = ["desk.test"]\nwatch = false\nfaq_fallback = false\n'
        "per_contact_max = 100\nglobal_max_per_minute = 100000\n"
        "[routing]\noffline_grace_seconds = 2\n[outbox]\nlease_seconds = 5\n"
        "[webchat]\nrate_limit = 1000\n"
        f'[webchat.widgets.shop]\nallowed_origins = ["{ORIGIN}"]\nprechat_fields = []\n'
    )
    require_server(POSTGRES_URL, "PostgreSQL")
    base = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")[0]
    node = Cluster(
        config=str(config),
        database_url=f"{base}/omnidesk_cl_{uuid.uuid4().hex[:10]}",  # prepare() creates it
        redis_url=redis_url,
        secret_key=SECRET,
        log_dir=tmp_path / "logs",
        web_ports=(free_port(), free_port()),
    )
    node.smtp_port = smtp_port
    try:
        await asyncio.to_thread(node.prepare)
        await asyncio.to_thread(node.start)
        yield node
    finally:
        await asyncio.to_thread(node.stop)
        await asyncio.to_thread(drop_database, node.database_url)


# -- people ----------------------------------------------------------------------------------
class AgentClient:
    """An agent signed in on one web process: HTTP session + a socket.io /agent client."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.cookie = ""
        self.csrf = ""
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        for name in ("event", "assigned", "presence"):
            self.sio.on(name, self._recorder(name), namespace="/agent")

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.events.append((name, data))

        return record

    async def sign_in(self, email: str) -> None:
        page = await (await self.http.get(self.base + "/login")).text()
        token = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        resp = await self.http.post(
            self.base + "/login",
            data={"email": email, "password": PASSWORD, "login_csrf": token},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        self.cookie = resp.cookies["od_session"].value
        queue = await (await self.http.get(self.base + "/queue", headers=self._auth())).text()
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', queue).group(1)  # type: ignore[union-attr]
        await self.sio.connect(
            self.base,
            namespaces=["/agent"],
            headers={"Origin": self.base, "Cookie": f"od_session={self.cookie}"},
            transports=["websocket"],
            wait_timeout=10,
        )

    def _auth(self) -> dict[str, str]:
        return {"Cookie": f"od_session={self.cookie}", "X-CSRF-Token": self.csrf}

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.base + path, json=body, headers=self._auth()) as resp:
            data = await resp.json()
            assert resp.status < 300, (resp.status, data)
            return data  # type: ignore[no-any-return]

    def assigned(self) -> list[int]:
        return [d["conversation_id"] for n, d in self.events if n == "assigned"]

    async def close(self) -> None:
        await self.sio.disconnect()
        await self.http.close()


def send_mail(port: int, sender: str, subject: str, text: str, message_id: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, "support@desk.test"
    msg["Subject"], msg["Message-ID"] = subject, message_id
    msg.set_content(text)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(msg)


async def sql(database_url: str, query: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


# -- 1. across processes -----------------------------------------------------------------------
async def test_chat_on_web_a_reaches_the_agent_on_web_b_live_and_replies_go_out(
    cluster: Any, relay: tuple[Relay, int]
) -> None:
    sink, _ = relay
    web_a, web_b = cluster.web_urls
    cluster.run(
        "agent", "add", "--name", "Ada Lovelace", "--email", "ada@desk.test",
        "--password", PASSWORD, "--skills", "english:9", "--capacity", "chat:3,email:10",
    )  # fmt: skip
    cluster.run(
        "agent", "add", "--name", "Sam Super", "--email", "sam@desk.test", "--role",
        "supervisor", "--password", PASSWORD, "--skills", "french:5",
    )  # fmt: skip
    agent = AgentClient(web_b)
    supervisor = AgentClient(web_a)  # sockets on both web processes: each hears every event
    visitor = socketio.AsyncClient(reconnection=False)
    pushed: list[dict[str, Any]] = []
    visitor.on("message", lambda data: pushed.append(data), namespace="/widget")
    try:
        await agent.sign_in("ada@desk.test")
        await supervisor.sign_in("sam@desk.test")
        await agent.post("/agent/api/presence", {"presence": "online"})

        await visitor.connect(
            web_a,
            namespaces=["/widget"],
            headers={"Origin": ORIGIN},
            auth={"widget": "shop"},
            transports=["websocket"],
            wait_timeout=10,
        )
        hello = await visitor.call("hello", {"after": 0}, namespace="/widget", timeout=10)
        assert hello["ok"], hello
        said = await visitor.call(
            "message",
            {"client_id": "client-0001", "text": "My parcel 1042 has not arrived"},
            namespace="/widget",
            timeout=10,
        )
        assert said["ok"], said

        # live on web B, from a message that entered through web A, and exactly once
        await until(lambda: agent.assigned(), what="the assignment notice on web B")
        chat_id = agent.assigned()[0]
        await asyncio.sleep(1.5)  # time for any duplicate to arrive
        assert agent.assigned() == [chat_id]
        received = [
            d for n, d in agent.events
            if n == "event" and d["name"] == "message.received" and d["conversation_id"] == chat_id
        ]  # fmt: skip
        assert len(received) == 1, agent.events
        seen = [
            d for n, d in supervisor.events
            if n == "event" and d["name"] == "conversation.assigned" and d["conversation_id"] == chat_id
        ]  # fmt: skip
        assert len(seen) == 1, supervisor.events  # on web A, once

        # the answer, sent on web B, delivered by a worker, reaches the visitor on web A
        await agent.post(
            f"/agent/api/conversations/{chat_id}/reply", {"text": "It ships today, sorry!"}
        )
        await until(
            lambda: any("It ships today" in m.get("text", "") for m in pushed),
            what="the answer in the widget on web A",
        )
        assert sum("It ships today" in m.get("text", "") for m in pushed) == 1

        # email: in through the smtp process, answered on web B, out through a worker
        await asyncio.to_thread(
            send_mail, cluster.smtp_port, "grace@example.org", "Invoice copy",
            "Could you send me a copy of invoice 77?", "<inv-77@example.org>",
        )  # fmt: skip
        await until(lambda: len(agent.assigned()) == 2, what="the email assigned to the agent")
        mail_id = agent.assigned()[1]
        await agent.post(
            f"/agent/api/conversations/{mail_id}/reply", {"text": "Here is invoice 77."}
        )
        await until(lambda: sink.count("invoice 77"), what="the relay")
        await asyncio.sleep(1.0)
        assert sink.count("invoice 77") == 1
        delivered = sink.received[-1]
        assert delivered["To"] == "grace@example.org"
        assert "<inv-77@example.org>" in (delivered["In-Reply-To"] or "")
        rows = await sql(
            cluster.database_url,
            "SELECT delivery_status FROM messages WHERE conversation_id = $1 "
            "AND direction = 'outbound'",
            mail_id,
        )
        assert [r["delivery_status"] for r in rows] in (["sent"], ["delivered"])
    finally:
        await visitor.disconnect()
        await agent.close()
        await supervisor.close()


# -- 2. kill -9 during a stream --------------------------------------------------------------
async def test_kill_web_router_and_worker_mid_stream_loses_and_duplicates_nothing(
    cluster: Any, relay: tuple[Relay, int]
) -> None:
    sink, _ = relay
    web_urls = cluster.web_urls
    for n in range(3):
        cluster.run(
            "agent", "add", "--name", f"Agent {n}", "--email", f"agent{n}@desk.test",
            "--password", PASSWORD, "--skills", "english:9", "--capacity", "api:4,email:4",
        )  # fmt: skip
    token = cluster.run("token", "create", "stream").strip()
    agents = [AgentClient(web_urls[n % 2]) for n in range(3)]
    for n, agent in enumerate(agents):
        await agent.sign_in(f"agent{n}@desk.test")
        await agent.post("/agent/api/presence", {"presence": "online"})

    acked_api: set[str] = set()
    acked_mail: set[str] = set()
    loop = asyncio.get_running_loop()
    killed_at: list[float] = []
    chaos_done = threading.Event()  # the stream goes on until every process came back

    async def post_api(session: aiohttp.ClientSession, i: int) -> None:
        key = f"stream-{i}"
        body = {"sender": f"c{i}@example.com", "text": f"api message {i}", "subject": "Hi"}
        for attempt in range(100):
            # like a load balancer: the next web process when one is down
            url = web_urls[(i + attempt) % 2] + "/api/v1/messages"
            try:
                async with session.post(
                    url,
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    if resp.status < 300:
                        acked_api.add(key)
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"{key} was never accepted")

    issued = itertools.count()
    sent_api: list[int] = []

    async def api_client(session: aiohttp.ClientSession) -> None:
        while not chaos_done.is_set() or len(sent_api) < 200:
            i = next(issued)
            sent_api.append(i)
            await post_api(session, i)
            await asyncio.sleep(0.1)  # a steady stream, not one burst

    def send_mail_stream() -> None:
        i = 0
        while not chaos_done.is_set() or i < 40:
            mid = f"<stream-{i}@example.org>"
            send_mail(cluster.smtp_port, f"m{i}@example.org", f"ack me {i}", f"mail {i}", mid)
            acked_mail.add(mid)  # smtplib raised on anything but 250
            i += 1

    async def chaos() -> None:
        try:
            for name in ("web1", "router1", "worker1"):
                await asyncio.sleep(1.5)
                await asyncio.to_thread(cluster.kill, name)  # SIGKILL
                killed_at.append(loop.time())
            await asyncio.sleep(1.0)
            for name in ("web1", "router1", "worker1"):
                await asyncio.to_thread(cluster.restart, name)
            await asyncio.sleep(1.0)
        finally:
            chaos_done.set()

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(
                *(api_client(session) for _ in range(8)),
                asyncio.to_thread(send_mail_stream),
                chaos(),
            )
        total, mails = len(sent_api), len(acked_mail)
        assert len(acked_api) == total and len(killed_at) == 3
        db = cluster.database_url

        # nothing acknowledged is lost, nothing stored twice
        rows = await sql(db, "SELECT channel, external_id FROM messages WHERE direction='inbound'")
        counts = Counter((r["channel"], r["external_id"]) for r in rows)
        assert max(counts.values()) == 1
        stored_api = sum(1 for ch, _ in counts if ch == "api")
        stored_mail = {ext for ch, ext in counts if ch == "email"}
        assert stored_api == total
        assert {m.strip("<>") for m in acked_mail} <= {e.strip("<>") for e in stored_mail}

        # every auto-reply is delivered exactly once (after the killed worker's lease, if any)
        async def replies() -> int:
            got = await sql(
                db,
                "SELECT count(*) AS n FROM messages WHERE direction='outbound' "
                "AND delivery_status IN ('sent', 'delivered')",
            )
            return int(got[0]["n"])

        deadline = asyncio.get_running_loop().time() + 120
        while await replies() < mails:
            assert asyncio.get_running_loop().time() < deadline, "auto-replies not all sent"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        # One Message-ID per auto-reply. SMTP has no exactly-once: a worker killed after
        # the relay's 250 and before its commit leaves the row to be sent again when the
        # lease ends, and that resend carries the same deterministic Message-ID, so the
        # customer's mail client shows one message. Such resends can only be sends that
        # were in flight in the killed worker (at most [outbox] concurrency, 20).
        ids_by_subject: dict[str, set[str]] = {}
        for m in sink.received:
            ids_by_subject.setdefault(str(m["Subject"]), set()).add(str(m["Message-ID"]))
        assert len(ids_by_subject) == mails
        assert all(len(ids) == 1 for ids in ids_by_subject.values()), ids_by_subject
        resent = len(sink.received) - mails
        assert resent <= 20, f"{resent} resends: more than the killed worker had in flight"
        sent_rows = await sql(
            db,
            "SELECT count(DISTINCT provider_id) AS ids, count(*) AS n FROM messages "
            "WHERE direction='outbound' AND delivery_status IN ('sent', 'delivered')",
        )
        assert sent_rows[0]["ids"] == sent_rows[0]["n"] == mails  # one provider id each

        # never one conversation with two agents at once
        spans = await sql(
            db,
            "SELECT conversation_id, assigned_at, ended_at FROM assignments "
            "ORDER BY conversation_id, assigned_at",
        )
        by_conv: dict[int, list[Any]] = {}
        for r in spans:
            by_conv.setdefault(r["conversation_id"], []).append(r)
        for conv, items in by_conv.items():
            for before, after in itertools.pairwise(items):
                assert (
                    before["ended_at"] is not None and before["ended_at"] <= after["assigned_at"]
                ), (
                    conv,
                    items,
                )
        open_now = await sql(
            db,
            "SELECT conversation_id, count(*) AS n FROM assignments WHERE ended_at IS NULL "
            "GROUP BY conversation_id HAVING count(*) > 1",
        )
        assert open_now == []
        # and the work went on: the surviving and restarted router assigned conversations
        assert by_conv, "no conversation was assigned"
        assert all(cluster.alive().values()), cluster.alive()
    finally:
        for agent in agents:
            await agent.close()
