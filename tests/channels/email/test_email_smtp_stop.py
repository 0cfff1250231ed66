"""Stopping the SMTP listener: no new connections at once, a session between commands
hears 421 and is closed, a transaction in DATA gets its answer (250 after the commit)
within the grace, and one that outlasts the grace is cut (its sender retries)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import aiosmtplib
import pytest
from emailtest_support import DOMAIN, SECRET, RecordingIngest, build_mail

from channels.email.files import MemoryAttachmentStore
from channels.email.parse import ParseOptions
from channels.email.settings import SMTPSettings
from channels.email.smtp_server import SMTPListener
from inbox.errors import AddressInUse

SETTINGS = SMTPSettings(
    host="127.0.0.1",
    port=0,
    hostname="mx.test",
    timeout=300,
    recipients={f"support@{DOMAIN}": "support"},
)
OPTIONS = ParseOptions(token_secret=SECRET, reply_domain=DOMAIN)


async def started(ingest: RecordingIngest) -> SMTPListener:
    listener = SMTPListener(SETTINGS, ingest, MemoryAttachmentStore(), OPTIONS)
    await listener.start()
    return listener


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 5)


async def test_stop_answers_the_transaction_in_data_and_sends_idle_sessions_away() -> None:
    ingest = RecordingIngest()
    ingest.gate = asyncio.Event()  # the commit is slow
    listener = await started(ingest)
    port = listener.port
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    await read_reply(idle_reader)  # greeting
    idle_writer.write(b"EHLO idle.example\r\n")
    await idle_writer.drain()

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
    await client.connect()
    sending = asyncio.create_task(
        client.sendmail("ann@customer.example", [f"support@{DOMAIN}"], build_mail())
    )
    while ingest.calls == 0:  # DATA is in, the commit not yet
        assert not sending.done(), sending
        await asyncio.sleep(0.01)

    stopping = asyncio.create_task(listener.stop(grace=5.0))
    await asyncio.sleep(0.2)
    with pytest.raises(OSError):  # no longer accepting
        await asyncio.open_connection("127.0.0.1", port)
    lines = b""
    while not lines.endswith(b"\r\n") or not lines.split(b"\r\n")[-2].startswith(b"421"):
        line = await read_reply(idle_reader)
        assert line, lines
        lines += line
    assert b"421 4.3.2" in lines
    assert not sending.done() and not stopping.done()  # the transaction is being waited for

    ingest.gate.set()  # committed
    errors, reply = await sending
    assert errors == {} and reply.startswith("2.0.0 OK")
    await asyncio.wait_for(stopping, 5)
    assert len(ingest.messages) == 1
    client.close()
    idle_writer.close()


async def test_a_transaction_outlasting_the_grace_is_cut_without_an_answer() -> None:
    ingest = RecordingIngest()
    ingest.gate = asyncio.Event()  # never set: the commit hangs
    listener = await started(ingest)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10)
    await client.connect()
    sending = asyncio.create_task(
        client.sendmail("ann@customer.example", [f"support@{DOMAIN}"], build_mail())
    )
    while ingest.calls == 0:
        assert not sending.done(), sending
        await asyncio.sleep(0.01)
    began = time.monotonic()
    await asyncio.wait_for(listener.stop(grace=0.5), 5)
    assert time.monotonic() - began < 3
    with pytest.raises(aiosmtplib.SMTPException):  # no 250: the sender keeps it and retries
        await sending
    client.close()


async def test_a_port_in_use_is_our_error_naming_it() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        listener = SMTPListener(
            dataclasses.replace(SETTINGS, port=port),
            RecordingIngest(),
            MemoryAttachmentStore(),
            OPTIONS,
        )
        with pytest.raises(AddressInUse, match=f"127.0.0.1:{port}.*smtp.port"):
            await listener.start()
