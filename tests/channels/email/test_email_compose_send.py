"""Outbound: composing messages, and the SMTP sender against a real aiosmtpd sink."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from emailtest_support import DOMAIN, SECRET

from channels.email import tokens
from channels.email.compose import Composer
from channels.email.parse import ParseOptions, parse_message
from channels.email.sender import SMTPSender
from channels.email.settings import EmailSettings, RelaySettings
from inbox.errors import DeliveryError, PermanentDeliveryError
from inbox.ports import Outbound

SETTINGS = EmailSettings(domain=DOMAIN, from_address=f"support@{DOMAIN}", from_name="ACME Support")


def outbound(**changes: Any) -> Outbound:
    base = Outbound(
        message_id=41,
        conversation_id=7,
        channel="email",
        to="ann@customer.example",
        text="Hello Ann,\nyour parcel left today. <script>alert(1)</script>",
        conversation_token="conv7tok",
        subject="Re: Help with my order",
        from_name="Bob (ACME)",
        in_reply_to="abc@customer.example",
        references=("root@customer.example",),
    )
    return dataclasses.replace(base, **changes)


def test_message_ids_are_not_guessable_from_the_ids() -> None:
    """Our Message-IDs once were `m<message>.c<conversation>.<instance>@domain`: anyone who
    had one could write the next. Now they are keyed by the installation secret."""
    composer = Composer(SETTINGS, SECRET)
    ours = composer.message_id(outbound())
    local, _, domain = ours.partition("@")
    assert domain == DOMAIN
    assert "41" not in local.split(".") and "m41" not in local and "c7" not in local
    assert composer.instance not in ours  # no public part either (the instance header is)
    # the same ids under another secret give another id; the neighbours share nothing
    assert Composer(SETTINGS, SECRET + "x").message_id(outbound()) != ours
    others = {composer.message_id(outbound(message_id=n)) for n in range(1, 200)}
    assert len(others) == 199 and ours in others
    assert len({o[:8] for o in others}) > 150  # no common prefix to walk


def test_compose_headers_and_alternative_bodies() -> None:
    composer = Composer(SETTINGS, SECRET)
    msg = composer.compose(outbound())
    assert msg.get_content_type() == "multipart/alternative"
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{re.escape(DOMAIN)}>", msg["Message-ID"])
    assert composer.compose(outbound())["Message-ID"] == msg["Message-ID"]  # deterministic
    assert msg["In-Reply-To"] == "<abc@customer.example>"
    assert msg["References"] == "<root@customer.example> <abc@customer.example>"
    assert msg["X-Omnidesk-Instance"] == composer.instance
    assert msg["Auto-Submitted"] is None
    assert str(msg["From"]) == f'"Bob (ACME)" <support@{DOMAIN}>'
    assert tokens.verify(str(msg["Reply-To"]), SECRET, domain=DOMAIN) == "conv7tok"
    plain, html = msg.iter_parts()
    assert "<script>alert(1)</script>" in plain.get_content()  # text is text
    html_body = html.get_content()
    assert "<script>" not in html_body and "&lt;script&gt;" in html_body  # autoescaped


def test_keys_of_ours_for_mail_without_a_message_id_are_never_sent() -> None:
    """Mail that came without a Message-ID (or a form) is stored under a key of ours
    (`sha256:...`, `form:...`): no mail client knows it, and it is no msg-id (no @)."""
    composer = Composer(SETTINGS, SECRET)
    msg = composer.compose(
        outbound(
            in_reply_to="sha256:0a1b2c",
            references=("form:contact:9f", "root@customer.example", "sha256:ffee"),
        )
    )
    assert msg["In-Reply-To"] is None
    assert msg["References"] == "<root@customer.example>"
    bare = composer.compose(outbound(in_reply_to="sha256:0a1b2c", references=()))
    assert bare["In-Reply-To"] is None and bare["References"] is None


def test_auto_reply_is_stamped_and_agent_html_is_sanitized() -> None:
    msg = Composer(SETTINGS, SECRET).compose(
        outbound(
            auto_reply=True, html='<p>Hi <a href="javascript:x()">x</a><img src=x onerror=y()></p>'
        )
    )
    assert msg["Auto-Submitted"] == "auto-replied"
    html = msg.get_body(("html",)).get_content()
    assert "<p>Hi" in html and "javascript" not in html and "onerror" not in html


def test_our_own_mail_coming_back_is_recognized_as_automatic() -> None:
    composer = Composer(SETTINGS, SECRET)
    raw = composer.compose(outbound()).as_bytes()
    m = parse_message(raw, ParseOptions(token_secret=SECRET, instance=composer.instance)).message
    assert m.auto_submitted is True


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"subject": "Hi\nX-Evil: 1"},
        {"from_name": "Bob\r\nBcc: victim@example.com"},
        {"to": "ann@customer.example\r\nBcc: victim@example.com"},
        {"to": "ann@customer.example\x00"},
        {"in_reply_to": "abc@x>\r\nBcc: v@example.com"},
        {"references": ("a@x", "b@x\nBcc: v@example.com")},
        {"attachments": (("a.txt\r\nX-Evil: 1", "text/plain", b"x"),)},
        {"to": "not an address"},
    ],
)
def test_header_injection_is_a_permanent_failure(changes: dict[str, Any]) -> None:
    with pytest.raises(PermanentDeliveryError):
        Composer(SETTINGS, SECRET).compose(outbound(**changes))


# --- the sender against a real SMTP sink -----------------------------------------------


class Sink:
    """An aiosmtpd handler that stores what it accepts and refuses by recipient."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@customer.example>: user unknown"
        if address.startswith("busy@"):
            return "451 4.7.1 greylisted, come back later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if b"REJECT-ME" in (envelope.content or b""):
            return "554 5.7.1 message content rejected by policy"
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, int]]:
    handler = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", 0)
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def sender_for(port: int) -> SMTPSender:
    relay = RelaySettings(host="127.0.0.1", port=port, tls="none", timeout=5)
    return SMTPSender(relay, Composer(SETTINGS, SECRET))


async def test_sender_delivers_and_returns_message_id(sink: tuple[Sink, int]) -> None:
    handler, port = sink
    sender = sender_for(port)
    assert sender.channel == "email"
    provider_id = await sender.send(outbound())
    (envelope,) = handler.received
    assert envelope.mail_from == f"support@{DOMAIN}"
    assert envelope.rcpt_tos == ["ann@customer.example"]
    delivered = message_from_bytes(envelope.content, policy=policy.default)
    assert delivered["Message-ID"] == f"<{provider_id}>"
    assert delivered["Subject"] == "Re: Help with my order"


async def test_sender_maps_5xx_to_permanent_with_reason(sink: tuple[Sink, int]) -> None:
    _, port = sink
    with pytest.raises(PermanentDeliveryError, match=r"550 5\.1\.1.*user unknown"):
        await sender_for(port).send(outbound(to="nobody@customer.example"))
    with pytest.raises(PermanentDeliveryError, match=r"554 5\.7\.1 message content rejected"):
        await sender_for(port).send(outbound(text="REJECT-ME"))


async def test_sender_maps_4xx_and_connection_errors_to_retryable(sink: tuple[Sink, int]) -> None:
    _, port = sink
    with pytest.raises(DeliveryError, match=r"451 4\.7\.1 greylisted") as info:
        await sender_for(port).send(outbound(to="busy@customer.example"))
    assert not isinstance(info.value, PermanentDeliveryError)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(DeliveryError, match="unreachable") as info:
        await sender_for(closed).send(outbound())
    assert not isinstance(info.value, PermanentDeliveryError)
