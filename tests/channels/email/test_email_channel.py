"""The assembled channel: a reply we send comes back threaded to its conversation, and our
own message bounced back into the listener is marked automatic (never auto-answered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes, policy

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from emailtest_support import DOMAIN, SECRET, RecordingIngest, build_mail

from channels.email.channel import EmailChannel
from channels.email.files import MemoryAttachmentStore
from channels.email.settings import EmailChannelSettings, EmailSettings, RelaySettings, SMTPSettings
from inbox.ports import Outbound


class Sink:
    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Sink, int]]:
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0
    )
    yield sink, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_round_trip_through_the_assembled_channel(relay: tuple[Sink, int]) -> None:
    sink, relay_port = relay
    settings = EmailChannelSettings(
        email=EmailSettings(
            domain=DOMAIN,
            from_address=f"support@{DOMAIN}",
            relay=RelaySettings(host="127.0.0.1", port=relay_port, tls="none", timeout=5),
        ),
        smtp=SMTPSettings(
            host="127.0.0.1",
            port=0,
            hostname="mx.test",
            recipients={f"support@{DOMAIN}": "support"},
        ),
    )
    ingest = RecordingIngest()
    channel = EmailChannel(
        settings, SECRET, ingest, store=MemoryAttachmentStore(), get_cursor=ingest.get_cursor
    )
    await channel.start()
    try:
        assert channel.listener is not None
        port = channel.listener.port
        # an agent answers conversation "c0nv5"
        item = Outbound(
            message_id=9,
            conversation_id=5,
            channel="email",
            to="ann@customer.example",
            text="We re-sent your parcel.",
            conversation_token="c0nv5",
            subject="Re: parcel",
            in_reply_to="first@customer.example",
        )
        provider_id = await channel.send(item)
        (sent,) = sink.received
        # the customer replies to the Reply-To address, quoting us
        ours = message_from_bytes(sent.content, policy=policy.default)
        reply_to = str(ours["Reply-To"])
        raw = build_mail(
            to=reply_to,
            subject="Re: parcel",
            text="Got it, thanks!\n\nOn Tue, ACME Support wrote:\n> We re-sent your parcel.\n",
            headers={
                "In-Reply-To": f"<{provider_id}>",
                "References": f"<first@customer.example> <{provider_id}>",
            },
        )
        await aiosmtplib.send(
            raw,
            sender="ann@customer.example",
            recipients=[reply_to],
            hostname="127.0.0.1",
            port=port,
            timeout=10,
        )
        (msg,) = ingest.messages
        assert msg.conversation_token == "c0nv5"
        assert msg.in_reply_to == provider_id
        assert msg.text == "Got it, thanks!"
        assert msg.inbox == "support" and msg.auto_submitted is False

        # our own message looping back (a forward rule at the customer's side) is automatic
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as client:
            await client.sendmail("ann@customer.example", [f"support@{DOMAIN}"], sent.content)
        assert ingest.messages[-1].auto_submitted is True
        assert any("own outbound" in r for r in ingest.messages[-1].metadata["auto_reasons"])
        health = channel.health()
        assert health["healthy"] is True and health["smtp"]["port"] == port
    finally:
        await channel.stop()
