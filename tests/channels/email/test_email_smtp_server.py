"""The inbound SMTP listener through real clients (smtplib in a thread, aiosmtplib)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from emailtest_support import DOMAIN, SECRET, RecordingIngest, build_mail, eventually

from channels.email import tokens
from channels.email.files import MemoryAttachmentStore
from channels.email.parse import ParseOptions, parse_message
from channels.email.settings import SMTPSettings
from channels.email.smtp_server import SMTPListener

OPTIONS = ParseOptions(token_secret=SECRET, reply_domain=DOMAIN)
BASE = SMTPSettings(
    host="127.0.0.1",
    port=0,
    hostname="mx.test",
    max_message_bytes=200_000,
    max_recipients=3,
    max_connections=5,
    recipients={
        f"support@{DOMAIN}": "support",
        f"sales@{DOMAIN}": "sales",
        "@help.example": "help",
    },
)

Factory = Callable[..., Any]


@pytest.fixture(params=[False, True], ids=["parse-in-loop", "parse-in-child"])
async def make_listener(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Every listener test runs with the parser in this process and in child processes
    (`isolate_parser`)."""
    started: list[SMTPListener] = []

    async def make(**changes: Any) -> tuple[SMTPListener, RecordingIngest, MemoryAttachmentStore]:
        quarantine = changes.pop("quarantine", None)
        changes.setdefault("isolate_parser", request.param)
        ingest, store = RecordingIngest(), MemoryAttachmentStore()
        listener = SMTPListener(
            dataclasses.replace(BASE, **changes), ingest, store, OPTIONS, quarantine=quarantine
        )
        await listener.start()
        started.append(listener)
        return listener, ingest, store

    yield make
    for listener in started:
        await listener.stop()


def smtplib_send(
    port: int, raw: bytes, rcpts: list[str], mail_from: str = "ann@customer.example"
) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail(mail_from, rcpts, raw)


async def test_delivery_through_smtplib_reaches_ingest_with_inbox_token_and_files(
    make_listener: Factory,
) -> None:
    listener, ingest, store = await make_listener()
    reply = tokens.make_reply_address("conv9", SECRET, domain=DOMAIN)
    raw = build_mail(
        to=reply, attachments=(("pic.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"1" * 100),)
    )
    refused = await asyncio.to_thread(smtplib_send, listener.port, raw, [reply])
    assert refused == {}
    (msg,) = ingest.messages
    assert msg.inbox == "support"  # support+TAG@ maps like support@
    assert msg.conversation_token == "conv9"
    assert msg.metadata["return_path"] == "ann@customer.example"
    assert msg.metadata["smtp"]["peer"] == "127.0.0.1"
    (att,) = msg.attachments
    assert att.storage_key is not None and store.blobs[att.storage_key].startswith(b"\x89PNG")


def _mail_with_a_long_line(octets: int) -> tuple[bytes, str]:
    """A message with one body line of `octets` octets with its CRLF (8-bit text that
    starts with a dot, which the client stuffs), and that line's text."""
    head = ".é long line ".encode()
    filler = b"".join(b"%d," % i for i in range(octets))
    line = head + filler[: octets - 2 - len(head)]
    raw = (
        b"From: Ann Customer <ann@customer.example>\r\n"
        + f"To: support@{DOMAIN}\r\nSubject: long line {octets}\r\n".encode()
        + f"Message-ID: <long-{octets}@customer.example>\r\nMIME-Version: 1.0\r\n".encode()
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        + b"\r\nbefore\r\n"
        + line
        + b"\r\nafter\r\n"
    )
    assert len(line) + 2 == octets
    return raw, line.decode()


@pytest.mark.parametrize("octets", [2_000, 100_000])
@pytest.mark.parametrize("client", ["smtplib", "aiosmtplib"])
async def test_a_long_line_is_accepted_and_stored_intact(
    make_listener: Factory, octets: int, client: str
) -> None:
    listener, ingest, _ = await make_listener()
    raw, line = _mail_with_a_long_line(octets)
    if client == "smtplib":
        refused = await asyncio.to_thread(smtplib_send, listener.port, raw, [f"support@{DOMAIN}"])
        assert refused == {}
    else:
        assert await _send(listener.port, raw) == (250, "2.0.0 OK: queued")
    (msg,) = ingest.messages
    assert msg.text.splitlines() == ["before", line, "after"]
    # the hash of the body bytes as received is the hash of the body as sent
    sent = parse_message(raw, OPTIONS).message.metadata["content_hash"]
    assert msg.metadata["content_hash"] == sent


async def test_a_long_line_over_the_size_limit_answers_552_and_the_session_goes_on(
    make_listener: Factory,
) -> None:
    listener, ingest, _ = await make_listener()
    raw, _ = _mail_with_a_long_line(250_000)  # the limit is 200,000
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10) as client:
        await client.mail("ann@customer.example")
        await client.rcpt(f"support@{DOMAIN}")
        with pytest.raises(aiosmtplib.SMTPDataError) as too_much:
            await client.data(raw)
        assert too_much.value.code == 552
        assert ingest.calls == 0
        raw, line = _mail_with_a_long_line(150_000)
        _, reply = await client.sendmail("ann@customer.example", [f"support@{DOMAIN}"], raw)
        assert reply == "2.0.0 OK: queued"
    (msg,) = ingest.messages
    assert line in msg.text


SMUGGLING = [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n", b"\r\n.\r", b"\n.\r"]


@pytest.mark.parametrize("separator", SMUGGLING, ids=[repr(s)[2:-1] for s in SMUGGLING])
async def test_a_lone_dot_after_a_bare_lf_or_cr_never_ends_data(
    make_listener: Factory, separator: bytes
) -> None:
    """SMTP smuggling: content that ends DATA early for a lax server and sends a second
    message from another sender after it. Only CRLF.CRLF ends DATA here: the rest is
    content of the one message, and no command in it is ever run."""
    listener, ingest, _ = await make_listener()
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)

    async def reply_to(line: bytes) -> bytes:
        writer.write(line)
        while (reply := await asyncio.wait_for(reader.readline(), 10))[3:4] == b"-":
            pass
        return reply

    assert (await reader.readline()).startswith(b"220 ")
    assert (await reply_to(b"EHLO client.test\r\n")).startswith(b"250 ")
    assert (await reply_to(b"MAIL FROM:<ann@customer.example>\r\n")).startswith(b"250 ")
    assert (await reply_to(f"RCPT TO:<support@{DOMAIN}>\r\n".encode())).startswith(b"250 ")
    assert (await reply_to(b"DATA\r\n")).startswith(b"354 ")
    content = (
        b"From: ann@customer.example\r\nSubject: first\r\n\r\nhello"
        + separator
        + b"MAIL FROM:<evil@attacker.example>\r\n"
        + f"RCPT TO:<sales@{DOMAIN}>\r\n".encode()
        + b"DATA\r\nFrom: evil@attacker.example\r\nSubject: smuggled\r\n\r\nevil\r\n"
    )
    assert (await reply_to(content + b".\r\n")) == b"250 2.0.0 OK: queued\r\n"
    assert (await reply_to(b"QUIT\r\n")).startswith(b"221 ")  # nothing else was answered
    writer.close()
    await writer.wait_closed()
    (msg,) = ingest.messages
    assert (msg.sender, msg.subject, msg.inbox) == ("ann@customer.example", "first", "support")
    text = msg.metadata.get("original_text", msg.text)  # (before quotes are folded away)
    assert "MAIL FROM:<evil@attacker.example>" in text and "Subject: smuggled" in text


async def test_unknown_recipient_refused_at_rcpt(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener()
    raw = build_mail()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(smtplib_send, listener.port, raw, ["nobody@elsewhere.example"])
    code, reason = info.value.recipients["nobody@elsewhere.example"]
    assert code == 550 and b"no such mailbox" in reason
    # a domain catch-all maps to its inbox
    await asyncio.to_thread(smtplib_send, listener.port, raw, ["anyone@help.example"])
    assert [m.inbox for m in ingest.messages] == ["help"]


async def test_size_is_advertised_and_enforced(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10)
    async with client:
        await client.ehlo()
        assert client.esmtp_extensions["size"] == "200000"
        # declared too large in MAIL FROM
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail("ann@customer.example", options=["SIZE=300000"])
        assert refused.value.code == 552
        # undeclared, then too much data
        await client.mail("ann@customer.example")
        await client.rcpt(f"support@{DOMAIN}")
        with pytest.raises(aiosmtplib.SMTPDataError) as too_much:
            await client.data(build_mail(text="x" * 300_000))
        assert too_much.value.code == 552
    assert ingest.calls == 0


async def test_too_many_recipients(make_listener: Factory) -> None:
    listener, _, _ = await make_listener()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10) as client:
        await client.mail("ann@customer.example")
        for _ in range(3):
            await client.rcpt(f"support@{DOMAIN}")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
            await client.rcpt(f"sales@{DOMAIN}")
        assert info.value.code == 452


async def test_ingest_failure_answers_451_and_a_retry_succeeds(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener()
    ingest.fail_next = 1
    raw = build_mail(message_id="<retry-1@customer.example>")
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await aiosmtplib.send(
            raw,
            sender="ann@customer.example",
            recipients=[f"support@{DOMAIN}"],
            hostname="127.0.0.1",
            port=listener.port,
            timeout=10,
        )
    assert info.value.code == 451
    assert ingest.messages == []
    await aiosmtplib.send(
        raw,
        sender="ann@customer.example",
        recipients=[f"support@{DOMAIN}"],
        hostname="127.0.0.1",
        port=listener.port,
        timeout=10,
    )
    # and a redelivery of the same message is answered 250 but stored once
    await aiosmtplib.send(
        raw,
        sender="ann@customer.example",
        recipients=[f"support@{DOMAIN}"],
        hostname="127.0.0.1",
        port=listener.port,
        timeout=10,
    )
    assert len(ingest.messages) == 1 and ingest.calls == 3


async def test_250_only_after_ingest_returned(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener()
    ingest.gate = asyncio.Event()
    task = asyncio.create_task(
        aiosmtplib.send(
            build_mail(),
            sender="ann@customer.example",
            recipients=[f"support@{DOMAIN}"],
            hostname="127.0.0.1",
            port=listener.port,
            timeout=10,
        )
    )
    assert await eventually(lambda: ingest.calls == 1)
    await asyncio.sleep(0.2)
    assert not task.done()  # the client is still waiting for our answer
    ingest.gate.set()
    errors, response = await asyncio.wait_for(task, 10)
    assert errors == {} and response.startswith("2.0.0 OK")
    assert len(ingest.messages) == 1


async def test_hostile_message_rejected_with_reason_or_quarantined(make_listener: Factory) -> None:
    hostile = b"From: a@customer.example\r\n" + b"X-Junk: y\r\n" * 400 + b"\r\nbody\r\n"
    listener, ingest, _ = await make_listener()
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await aiosmtplib.send(
            hostile,
            sender="a@customer.example",
            recipients=[f"support@{DOMAIN}"],
            hostname="127.0.0.1",
            port=listener.port,
            timeout=10,
        )
    assert info.value.code == 554 and "header fields" in info.value.message
    assert ingest.calls == 0

    held: list[tuple[bytes, str]] = []

    async def quarantine(raw: bytes, reason: str) -> None:
        held.append((raw, reason))

    listener, ingest, _ = await make_listener(quarantine=quarantine)
    errors, response = await aiosmtplib.send(
        hostile,
        sender="a@customer.example",
        recipients=[f"support@{DOMAIN}"],
        hostname="127.0.0.1",
        port=listener.port,
        timeout=10,
    )
    assert errors == {} and "held for review" in response
    assert len(held) == 1 and "header fields" in held[0][1] and ingest.calls == 0


async def test_concurrent_connection_limit(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener(max_connections=2)
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10) for _ in range(2)
    ]
    for client in clients:
        await client.connect()
    assert await eventually(lambda: listener.connections == 2)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    greeting = await asyncio.wait_for(reader.readline(), 5)
    assert greeting.startswith(b"421 ")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # and closed
    writer.close()
    await writer.wait_closed()
    # the held connections still work, and a slot frees up when one leaves
    await clients[0].sendmail("ann@customer.example", [f"support@{DOMAIN}"], build_mail())
    for client in clients:
        await client.quit()
    assert await eventually(lambda: listener.connections == 0)
    await aiosmtplib.send(
        build_mail(),
        sender="ann@customer.example",
        recipients=[f"support@{DOMAIN}"],
        hostname="127.0.0.1",
        port=listener.port,
        timeout=10,
    )
    assert len(ingest.messages) == 2


async def test_persistent_connection_many_messages(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10) as client:
        for n in range(20):
            await client.sendmail(
                "ann@customer.example", [f"sales@{DOMAIN}"], build_mail(subject=f"n{n}")
            )
    assert [m.subject for m in ingest.messages] == [f"n{n}" for n in range(20)]
    assert {m.inbox for m in ingest.messages} == {"sales"}


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=mx.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_starttls_when_a_certificate_is_configured(
    make_listener: Factory, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    listener, ingest, _ = await make_listener(tls_cert=cert, tls_key=key, require_starttls=True)
    # a client that does not upgrade is refused
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=listener.port, timeout=10, start_tls=False
    ) as plain:
        await plain.ehlo()
        assert plain.supports_extension("starttls")
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await plain.mail("ann@customer.example")
        assert info.value.code == 530
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    await aiosmtplib.send(
        build_mail(),
        sender="ann@customer.example",
        recipients=[f"support@{DOMAIN}"],
        hostname="127.0.0.1",
        port=listener.port,
        timeout=10,
        start_tls=True,
        tls_context=context,
    )
    assert len(ingest.messages) == 1


async def test_stop_closes_the_port(make_listener: Factory) -> None:
    listener, _, _ = await make_listener()
    port = listener.port
    await listener.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


# -- the parser in child processes (isolate_parser) -------------------------------------


async def _send(port: int, raw: bytes) -> tuple[int, str]:
    """(code, text) of the server's answer to DATA."""
    try:
        _, response = await aiosmtplib.send(
            raw,
            sender="ann@customer.example",
            recipients=[f"support@{DOMAIN}"],
            hostname="127.0.0.1",
            port=port,
            timeout=30,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    return 250, response


def _slow_mail() -> bytes:
    """A legitimate message the parser takes ~0.9 s over here: 4 MB of HTML."""
    html = ("<p>" + "word <b>bold</b> " * 20 + "</p>\r\n") * 12000
    return (
        b"From: ann@customer.example\r\nSubject: slow\r\nContent-Type: text/html\r\n\r\n"
        + html.encode()
    )


# these tests are about the parser processes: make_listener with isolate_parser only
ISOLATED = pytest.mark.parametrize("make_listener", [True], indirect=True, ids=["parse-in-child"])


@ISOLATED
async def test_a_message_over_the_parse_time_limit_is_refused_and_others_still_pass(
    make_listener: Factory,
) -> None:
    listener, ingest, _ = await make_listener(parse_timeout=0.1, max_message_bytes=5_000_000)
    slow, quick = await asyncio.gather(
        _send(listener.port, _slow_mail()), _send(listener.port, build_mail(subject="quick"))
    )
    assert slow[0] == 554 and "took over 0.1 s to parse" in slow[1], slow  # ~0.9 s here
    assert quick[0] == 250, quick
    assert [m.subject for m in ingest.messages] == ["quick"]
    # the killed parser was replaced: the next message parses as usual
    assert (await _send(listener.port, build_mail(subject="after")))[0] == 250
    assert [m.subject for m in ingest.messages] == ["quick", "after"]


@ISOLATED
async def test_a_parser_killed_mid_parse_answers_451_and_the_next_message_passes(
    make_listener: Factory,
) -> None:
    listener, ingest, _ = await make_listener(max_message_bytes=5_000_000)
    parser = listener.handler.parser
    assert parser is not None
    sending = asyncio.create_task(_send(listener.port, _slow_mail()))
    # the large-message parser starts with the first large message, and is then parsing it
    assert await eventually(lambda: parser.large.pid() is not None)
    pid = parser.large.pid()
    await asyncio.sleep(0.3)
    await asyncio.to_thread(subprocess.run, ["kill", "-9", str(pid)], check=True)
    code, text = await sending
    assert code == 451, (code, text)  # the sender retries; nothing was stored
    assert ingest.messages == []
    assert (await _send(listener.port, build_mail(subject="next")))[0] == 250
    assert [m.subject for m in ingest.messages] == ["next"]
    assert (await _send(listener.port, _slow_mail()))[0] == 250  # a new large parser
    assert parser.large.pid() not in (None, pid)


@ISOLATED
async def test_a_message_over_the_parser_memory_cap_is_refused(make_listener: Factory) -> None:
    listener, ingest, _ = await make_listener(parse_memory_mb=128, max_message_bytes=30_000_000)
    # a 19 MB message, a 15 MB attachment: its parse peaks ~100 MB over the interpreter's
    # own, with the request and answer copies more than a 128 MB address space holds
    blob = (b"QUFBQUFB" * 76 + b"\r\n") * (20_000_000 // 610)
    raw = (
        b"From: ann@customer.example\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.bin"\r\n\r\n' + blob + b"--b--\r\n"
    )
    code, text = await _send(listener.port, raw)
    assert code == 554 and "more memory to parse than allowed" in text, (code, text)
    assert ingest.messages == []
    assert (await _send(listener.port, build_mail(subject="small")))[0] == 250


async def test_an_idle_connection_is_closed_after_the_timeout_and_commands_extend_it(
    make_listener: Factory,
) -> None:
    listener, _, _ = await make_listener(timeout=0.8)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    assert (await reader.readline()).startswith(b"220 ")
    started = asyncio.get_running_loop().time()
    for _ in range(3):  # a command every 0.5 s keeps it open past 0.8 s
        await asyncio.sleep(0.5)
        writer.write(b"NOOP\r\n")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"250 ")
    assert listener.connections == 1
    # then idle: told so, and closed
    assert (
        await asyncio.wait_for(reader.read(), 5) == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
    )
    idle = asyncio.get_running_loop().time() - started - 1.5
    assert 0.7 < idle < 3, idle
    assert await eventually(lambda: listener.connections == 0)
    writer.close()
