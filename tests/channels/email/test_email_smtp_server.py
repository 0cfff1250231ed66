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
from channels.email.parse import ParseOptions
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


@pytest.fixture
async def make_listener() -> AsyncIterator[Factory]:
    started: list[SMTPListener] = []

    async def make(**changes: Any) -> tuple[SMTPListener, RecordingIngest, MemoryAttachmentStore]:
        quarantine = changes.pop("quarantine", None)
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
