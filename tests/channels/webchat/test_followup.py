"""A chat visitor who left an email address and is gone gets the agent's answer by email
too; one still connected gets it live only. Real socket.io in, real SMTP out."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from email import message_from_bytes, policy

import pytest
from aiosmtpd.smtp import SMTP
from webchat_support import ORIGIN, Visitor, wait_for, webchat_toml

from inbox.store.outbox import enqueue
from inbox.types import AuthorKind
from tests.conftest import write_config


class Sink:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append(envelope.content)
        return "250 OK"


@pytest.fixture
async def desk(tmp_path, aiohttp_client):
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services

    sink = Sink()
    relay = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0
    )
    port = relay.sockets[0].getsockname()[1]
    email = f'[email]\ndomain = "desk.test"\n[email.relay]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n[smtp]\nenabled = false\n'
    config = config_mod.load(write_config(tmp_path, webchat_toml() + email), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    services.outbox.poll_interval = 0.05
    services.outbox.start()
    client = await aiohttp_client(make_web_app(services))
    client.services, client.sink = services, sink
    client.url = str(client.make_url("/")).rstrip("/")
    client.db = str(tmp_path / "omnidesk.db")
    try:
        yield client
    finally:
        await services.outbox.stop()
        await services.close()
        relay.close()
        await relay.wait_closed()


async def visitor_at(url: str, **auth: str) -> Visitor:
    visitor = Visitor()
    await visitor.sio.connect(
        url,
        headers={"Origin": ORIGIN},
        auth={"widget": "shop", **auth},
        namespaces=["/widget"],
        transports=["websocket"],
        wait_timeout=10,
    )
    return visitor


def status(db: str, message_id: int) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT delivery_status, provider_id FROM messages WHERE id=?", (message_id,)
        ).fetchone()


async def reply(desk, conversation_id: int, text: str) -> int:
    mid = await desk.services.store.write(
        lambda c: enqueue(
            c, conversation_id=conversation_id, text=text, author_kind=AuthorKind.AGENT
        )
    )
    desk.services.outbox.poke()
    await wait_for(lambda: status(desk.db, mid)[0] != "queued")
    return mid


async def test_away_visitor_with_an_address_is_followed_up_by_email(desk):
    visitor = await visitor_at(desk.url)
    token = (await visitor.hello())["token"]
    ack = await visitor.say(str(uuid.uuid4()), "Is anyone there?")
    answer = await visitor.call("profile", {"email": "Dana@Example.org", "consent": True})
    assert answer["ok"], answer
    with sqlite3.connect(desk.db) as conn:
        (cid,) = conn.execute(
            "SELECT conversation_id FROM messages WHERE id=?", (ack["seq"],)
        ).fetchone()

    # still here: live only, no email
    live = await reply(desk, cid, "Hello Dana, looking into it.")
    assert status(desk.db, live) == ("sent", f"webchat:{live}")
    await wait_for(lambda: len(visitor.pushed()) == 1)
    assert desk.sink.received == []

    # gone: the answer waits in the widget history and goes out by email too
    await visitor.sio.disconnect()
    away = await reply(desk, cid, "Found it: your parcel ships today.")
    state, provider_id = status(desk.db, away)
    assert state == "sent" and provider_id != f"webchat:{away}"
    assert len(desk.sink.received) == 1
    mail = message_from_bytes(desk.sink.received[0], policy=policy.default)
    assert mail["To"] == "dana@example.org"  # normalized when the visitor left it
    assert "your parcel ships today" in mail.get_body(("plain",)).get_content()
    assert str(mail["Reply-To"]).startswith("support+")  # an answer threads back

    # back in the widget, the history holds both answers
    back = await visitor_at(desk.url, token=token)
    history = (await back.hello())["messages"]
    assert [m["text"] for m in history if m["author"] == "agent"] == [
        "Hello Dana, looking into it.",
        "Found it: your parcel ships today.",
    ]
    await back.sio.disconnect()


async def test_away_visitor_without_an_address_is_kept_for_resync(desk):
    visitor = await visitor_at(desk.url)
    await visitor.hello()
    ack = await visitor.say(str(uuid.uuid4()), "hi")
    await visitor.sio.disconnect()
    with sqlite3.connect(desk.db) as conn:
        (cid,) = conn.execute(
            "SELECT conversation_id FROM messages WHERE id=?", (ack["seq"],)
        ).fetchone()
    mid = await reply(desk, cid, "Sorry we missed you.")
    assert status(desk.db, mid) == ("sent", f"webchat:{mid}")
    assert desk.sink.received == []
