"""A web-form conversation is answered by email, and the customer's email reply threads
back into the same conversation: real HTTP in, real SMTP out to a relay, real SMTP back."""

from __future__ import annotations

import asyncio
import sqlite3
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP

from inbox.store.outbox import enqueue
from inbox.types import AuthorKind
from tests.conftest import write_config
from tests.test_crash import free_port


class Sink:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append(envelope.content)
        return "250 OK"


async def eventually(predicate, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.fixture
async def relay():
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0
    )
    yield sink, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_form_is_answered_by_email_and_the_reply_threads_back(
    tmp_path, relay, aiohttp_client
):
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services

    sink, relay_port = relay
    smtp_port = free_port()
    extra = f"""
[email]
domain = "desk.test"
from_name = "Desk"
[email.relay]
host = "127.0.0.1"
port = {relay_port}
tls = "none"
[smtp]
port = {smtp_port}
[forms.contact]
title = "Contact us"
[[forms.contact.fields]]
name = "email"
type = "email"
required = true
[[forms.contact.fields]]
name = "message"
type = "textarea"
required = true
"""
    config = config_mod.load(write_config(tmp_path, extra), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    services.outbox.poll_interval = 0.05
    services.outbox.start()
    for startup in services.parts.startups:
        await startup()
    client = await aiohttp_client(make_web_app(services))
    try:
        resp = await client.post(
            "/forms/contact",
            data={"email": "Cleo@Example.org", "message": "My invoice is wrong"},
            allow_redirects=False,
        )
        assert resp.status == 303
        db = sqlite3.connect(tmp_path / "omnidesk.db")
        ((conversation_id, channel),) = db.execute(
            "SELECT id, channel FROM conversations"
        ).fetchall()
        assert channel == "form"

        await services.store.write(
            lambda c: enqueue(
                c,
                conversation_id=conversation_id,
                text="We fixed it.",
                author_kind=AuthorKind.AGENT,
            )
        )
        services.outbox.poke()
        await eventually(lambda: len(sink.received) == 1)
        sent = message_from_bytes(sink.received[0], policy=policy.default)
        assert sent["To"] == "cleo@example.org"
        reply_to = str(sent["Reply-To"])
        assert reply_to.startswith("support+") and reply_to.endswith("@desk.test")
        assert "We fixed it." in sent.get_body(("plain",)).get_content()

        # the customer answers from another client that keeps no headers but the address
        answer = EmailMessage()
        answer["From"] = "cleo@example.org"
        answer["To"] = reply_to
        answer["Subject"] = "Thanks!"
        answer["Message-ID"] = "<answer-1@example.org>"
        answer.set_content("Great, thank you.")
        await aiosmtplib.send(answer, hostname="127.0.0.1", port=smtp_port)
        await eventually(
            lambda: (
                db.execute("SELECT count(*) FROM messages WHERE direction='inbound'").fetchone()[0]
                == 2
            )
        )
        rows = db.execute(
            "SELECT conversation_id, channel FROM messages WHERE direction='inbound' ORDER BY id"
        ).fetchall()
        assert rows == [(conversation_id, "form"), (conversation_id, "email")]
        assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1
        db.close()
    finally:
        await services.outbox.stop()
        await services.close()
