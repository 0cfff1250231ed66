"""Threading cannot be hijacked, end to end: real SMTP in to our listener, real SMTP out to
a relay. A stranger who names our Message-ID or the customer's (In-Reply-To, References)
gets a conversation of their own, flagged for agents; the customer's own reply threads;
another sender's mail reusing a Message-ID is stored and answered 250; our References
carry the whole thread, our own earlier Message-IDs included."""

from __future__ import annotations

import sqlite3
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib
import pytest

from inbox.store.outbox import enqueue
from inbox.types import AuthorKind
from tests.conftest import write_config
from tests.test_crash import free_port
from tests.test_form_email_thread import eventually, relay  # noqa: F401 - a fixture

DOMAIN = "desk.test"


def mail(sender: str, message_id: str, text: str, **headers: str) -> EmailMessage:
    out = EmailMessage()
    out["From"] = sender
    out["To"] = f"support@{DOMAIN}"
    out["Subject"] = headers.pop("subject", "My order")
    out["Message-ID"] = message_id
    for name, value in headers.items():
        out[name.replace("_", "-")] = value
    out.set_content(text)
    return out


@pytest.fixture
async def desk(tmp_path, relay):  # noqa: F811
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.wiring import build_services

    sink, relay_port = relay
    smtp_port = free_port()
    extra = f"""
[email]
domain = "{DOMAIN}"
from_name = "Desk"
[email.relay]
host = "127.0.0.1"
port = {relay_port}
tls = "none"
[smtp]
port = {smtp_port}
"""
    config = config_mod.load(write_config(tmp_path, extra), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    services.outbox.poll_interval = 0.05
    services.outbox.start()
    for startup in services.parts.startups:
        await startup()
    db = sqlite3.connect(tmp_path / "omnidesk.db")
    try:
        yield services, sink, smtp_port, db
    finally:
        db.close()
        await services.outbox.stop()
        await services.close()


def inbound(db) -> list[tuple[int, str, str, str]]:
    """(conversation, sender's email, external id, text) of each inbound message."""
    return db.execute(
        "SELECT m.conversation_id, i.value, m.external_id, m.text FROM messages m "
        "JOIN identities i ON i.contact_id = m.author_id AND i.kind = 'email' "
        "WHERE m.direction = 'inbound' ORDER BY m.id"
    ).fetchall()


async def answer(services, sink, conversation_id: int, text: str) -> EmailMessage:
    before = len(sink.received)
    await services.store.write(
        lambda c: enqueue(
            c, conversation_id=conversation_id, text=text, author_kind=AuthorKind.AGENT
        )
    )
    services.outbox.poke()
    await eventually(lambda: len(sink.received) == before + 1)
    return message_from_bytes(sink.received[-1], policy=policy.default)


async def test_threading_cannot_be_hijacked_over_smtp(desk) -> None:
    services, sink, port, db = desk

    async def send(message: EmailMessage, count: int) -> None:
        # (a refusal raises; 250 comes only after the commit)
        errors, _reply = await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
        assert errors == {}
        await eventually(lambda: len(inbound(db)) == count)

    await send(mail("vic@victim.example", "<v1@victim.example>", "Where is my parcel?"), 1)
    ((victim_conv, _, _, _),) = inbound(db)
    ours1 = await answer(services, sink, victim_conv, "It left today.")
    first_id = str(ours1["Message-ID"])

    # a stranger naming our Message-ID in In-Reply-To
    await send(
        mail(
            "mallory@evil.example",
            "<h1@evil.example>",
            "I am Vic, refund me",
            In_Reply_To=first_id,
        ),
        2,
    )
    # ... and the customer's in a References list
    await send(
        mail(
            "eve@evil.example",
            "<h2@evil.example>",
            "Same here",
            References="<nothing@nowhere.example> <v1@victim.example>",
        ),
        3,
    )
    rows = inbound(db)
    for conv, sender, _eid, _text in rows[1:]:
        assert conv != victim_conv, sender
        meta = db.execute(
            "SELECT meta FROM messages WHERE conversation_id = ? AND direction = 'inbound'",
            (conv,),
        ).fetchone()[0]
        assert f'"refers_to": {victim_conv}' in meta or f'"refers_to":{victim_conv}' in meta
    assert [r for r in rows if r[0] == victim_conv] == rows[:1]


async def test_our_references_and_a_reused_message_id_over_smtp(desk) -> None:
    services, sink, port, db = desk

    async def send(message: EmailMessage, count: int) -> None:
        errors, _reply = await aiosmtplib.send(message, hostname="127.0.0.1", port=port)
        assert errors == {}
        await eventually(lambda: len(inbound(db)) == count)

    await send(mail("vic@victim.example", "<v1@victim.example>", "Where is my parcel?"), 1)
    ((victim_conv, _, _, _),) = inbound(db)
    ours1 = await answer(services, sink, victim_conv, "It left today.")
    first_id = str(ours1["Message-ID"])
    assert str(ours1["References"]) == "<v1@victim.example>"
    # the customer's own reply threads (by our Message-ID)
    await send(
        mail(
            "Vic@Victim.example",
            "<v2@victim.example>",
            "Thanks, and the invoice?",
            In_Reply_To=first_id,
            References=f"<v1@victim.example> {first_id}",
        ),
        2,
    )
    assert inbound(db)[-1][0] == victim_conv
    # our next answer names the whole thread, our first answer included
    ours2 = await answer(services, sink, victim_conv, "Attached.")
    assert str(ours2["References"]).split() == [
        "<v1@victim.example>",
        first_id,
        "<v2@victim.example>",
    ]
    assert str(ours2["In-Reply-To"]) == "<v2@victim.example>"
    assert str(ours2["Message-ID"]) != first_id
    # our Message-ID names neither the message nor the conversation
    assert f".c{victim_conv}." not in first_id and "m" + str(victim_conv) not in first_id

    # another sender reusing the customer's Message-ID: answered 250, and stored
    errors, _reply = await aiosmtplib.send(
        mail("trent@other.example", "<v1@victim.example>", "A message of my own"),
        hostname="127.0.0.1",
        port=port,
    )
    assert errors == {}
    await eventually(lambda: len(inbound(db)) == 3)
    conv, sender, eid, text = inbound(db)[-1]
    assert (sender, eid, text) == (
        "trent@other.example",
        "v1@victim.example",
        "A message of my own",
    )
    assert conv != victim_conv
    # the customer's own redelivery is still stored once
    await aiosmtplib.send(
        mail("vic@victim.example", "<v1@victim.example>", "Where is my parcel?"),
        hostname="127.0.0.1",
        port=port,
    )
    assert len(inbound(db)) == 3
    assert (
        db.execute(
            "SELECT count(*) FROM messages WHERE external_id = 'v1@victim.example'"
        ).fetchone()[0]
        == 2
    )
