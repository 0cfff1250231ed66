"""Slow and greedy clients cannot shut the listener's door: a cap per client address, the
last slots kept for addresses holding none, a shorter command timeout under stress, and a
bound on a whole session, each answered with a 421 (and nothing acknowledged lost).

Client addresses: Linux routes all of 127/8 to the loopback interface, so a client socket
bound to 127.0.0.2 (or .3, ...) reaches the listener on 127.0.0.1 from another address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiosmtplib
import pytest
from emailtest_support import DOMAIN, SECRET, RecordingIngest, build_mail, eventually

from channels.email.files import MemoryAttachmentStore
from channels.email.parse import ParseOptions
from channels.email.settings import SMTPSettings
from channels.email.smtp_server import SMTPListener

OPTIONS = ParseOptions(token_secret=SECRET, reply_domain=DOMAIN)
# the defaults but the port, our name and the recipients
BASE = SMTPSettings(
    host="127.0.0.1", port=0, hostname="mx.test", recipients={f"support@{DOMAIN}": "support"}
)
FROM_YOUR_ADDRESS = b"421 4.7.0 Too many connections from your address, try again later\r\n"

Factory = Callable[..., Any]


@pytest.fixture
async def make_listener() -> AsyncIterator[Factory]:
    started: list[SMTPListener] = []

    async def make(**changes: Any) -> tuple[SMTPListener, RecordingIngest]:
        ingest = RecordingIngest()
        listener = SMTPListener(
            dataclasses.replace(BASE, **changes), ingest, MemoryAttachmentStore(), OPTIONS
        )
        await listener.start()
        started.append(listener)
        return listener, ingest

    yield make
    for listener in started:
        await listener.stop()


class Client:
    """A raw SMTP connection from a chosen loopback address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.greeting = b""

    @classmethod
    async def open(cls, port: int, address: str = "127.0.0.1") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        client = cls(reader, writer)
        client.greeting = await asyncio.wait_for(reader.readline(), 10)
        return client

    async def command(self, line: bytes) -> bytes:
        self.writer.write(line)
        while (reply := await asyncio.wait_for(self.reader.readline(), 10))[3:4] == b"-":
            pass
        return reply

    async def rest(self) -> bytes:
        """What the server still sends until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), 10)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


async def test_200_slow_connections_from_one_address_leave_room_for_other_senders(
    make_listener: Factory,
) -> None:
    listener, ingest = await make_listener()
    # the attacker: 200 connections from 127.0.0.1, each dribbling EHLO a byte at a time
    slow = await asyncio.gather(*(Client.open(listener.port) for _ in range(200)))
    held = [c for c in slow if c.greeting.startswith(b"220 ")]
    refused = [c for c in slow if c not in held]
    stop = asyncio.Event()

    async def dribble(client: Client) -> None:
        for byte in itertools.cycle(b"EHLO slow.example"):
            client.writer.write(bytes([byte]))
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
                return
            except TimeoutError:
                pass

    dribbling = [asyncio.create_task(dribble(c)) for c in held]

    # meanwhile a real sender at 127.0.0.2 delivers 50 messages over 10 connections
    async def sender(n: int) -> list[str]:
        replies = []
        async with aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=listener.port,
            source_address=("127.0.0.2", 0),
            timeout=10,
        ) as client:
            for i in range(5):
                raw = build_mail(subject=f"real {n}.{i}")
                _, reply = await client.sendmail("ann@customer.example", [f"support@{DOMAIN}"], raw)
                replies.append(reply)
        return replies

    replies = await asyncio.gather(*(sender(n) for n in range(10)))
    assert [r for rs in replies for r in rs] == ["2.0.0 OK: queued"] * 50
    assert len(ingest.messages) == 50
    assert {m.metadata["smtp"]["peer"] for m in ingest.messages} == {"127.0.0.2"}
    # the slow address holds max_connections_per_ip (default 20); the rest were told why
    assert len(held) == 20 and listener._gate.held["127.0.0.1"] == 20
    assert {c.greeting for c in refused} == {FROM_YOUR_ADDRESS}
    assert all([await c.rest() == b"" for c in refused])  # and closed
    stop.set()
    await asyncio.gather(*dribbling)
    await asyncio.gather(*(c.close() for c in slow))
    assert await eventually(lambda: listener.connections == 0)


async def test_the_last_slots_go_to_addresses_holding_none(make_listener: Factory) -> None:
    listener, _ = await make_listener(
        max_connections=10, max_connections_per_ip=4, reserved_connections=2
    )
    port = listener.port
    clients = [await Client.open(port, f"127.0.0.{3 + i // 4}") for i in range(8)]
    assert all(c.greeting.startswith(b"220 ") for c in clients)  # 4 each from .3 and .4
    # two slots left, both reserved: not for .3 or .4, which hold some
    for address in ("127.0.0.3", "127.0.0.4"):
        clients.append(await Client.open(port, address))
        assert clients[-1].greeting == FROM_YOUR_ADDRESS
    clients.append(await Client.open(port, "127.0.0.5"))  # a new address: let in
    assert clients[-1].greeting.startswith(b"220 ")
    clients.append(await Client.open(port, "127.0.0.5"))  # but only once
    assert clients[-1].greeting == FROM_YOUR_ADDRESS
    clients.append(await Client.open(port, "127.0.0.6"))
    assert clients[-1].greeting.startswith(b"220 ")
    clients.append(await Client.open(port, "127.0.0.7"))  # now full for everyone
    assert clients[-1].greeting == b"421 4.7.0 Too many connections, try again later\r\n"
    assert listener.connections == 10
    # a freed slot is free again
    await clients[0].command(b"QUIT\r\n")
    assert await eventually(lambda: listener.connections == 9)
    clients.append(await Client.open(port, "127.0.0.7"))
    assert clients[-1].greeting.startswith(b"220 ")
    for client in clients:
        await client.close()


async def test_under_stress_a_command_gets_the_short_timeout(make_listener: Factory) -> None:
    listener, _ = await make_listener(
        max_connections=4, reserved_connections=1, timeout=30, stress_timeout=0.5
    )
    loop = asyncio.get_running_loop()
    calm = [await Client.open(listener.port) for _ in range(2)]  # 2 free: the usual 30 s
    started = loop.time()
    stressed = await Client.open(listener.port)  # 1 free, the reserve: 0.5 s
    assert await stressed.rest() == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
    assert loop.time() - started < 5
    # the others got their time while the listener was calm, and still have it
    for client in calm:
        assert (await client.command(b"NOOP\r\n")).startswith(b"250 ")
        await client.close()
    await stressed.close()


async def test_a_command_dribbled_a_byte_at_a_time_gets_only_the_command_timeout(
    make_listener: Factory,
) -> None:
    listener, _ = await make_listener(timeout=1)
    client = await Client.open(listener.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = asyncio.create_task(client.reader.readline())
    # bytes keep coming, but the command never ends: that does not buy time
    for byte in b"EHLO " + b"x" * 100:
        if answer.done():
            break
        client.writer.write(bytes([byte]))
        await asyncio.sleep(0.05)
    assert await answer == b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
    assert 0.8 < loop.time() - started < 3
    assert await client.rest() == b""
    assert await eventually(lambda: listener.connections == 0)
    await client.close()


async def test_a_session_ends_at_its_time_limit_however_active(make_listener: Factory) -> None:
    listener, _ = await make_listener(timeout=5, session_timeout=1)
    client = await Client.open(listener.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # a command every 0.2 s: never idle, but the session as a whole is bounded
    while loop.time() - started < 10:
        reply = await client.command(b"NOOP\r\n")
        if not reply.startswith(b"250 "):
            break
        await asyncio.sleep(0.2)
    assert reply == b"421 4.7.0 mx.test Session time limit reached, closing\r\n"
    assert 0.8 < loop.time() - started < 5
    assert await client.rest() == b""
    assert await eventually(lambda: listener.connections == 0)
    await client.close()


async def test_a_message_being_stored_at_the_session_limit_is_answered_first(
    make_listener: Factory,
) -> None:
    listener, ingest = await make_listener(timeout=5, session_timeout=1)
    ingest.gate = asyncio.Event()  # the store takes its time
    client = await Client.open(listener.port)
    assert (await client.command(b"EHLO client.test\r\n")).startswith(b"250 ")
    assert (await client.command(b"MAIL FROM:<ann@customer.example>\r\n")).startswith(b"250 ")
    assert (await client.command(f"RCPT TO:<support@{DOMAIN}>\r\n".encode())).startswith(b"250 ")
    assert (await client.command(b"DATA\r\n")).startswith(b"354 ")
    client.writer.write(build_mail(subject="in time").replace(b"\n", b"\r\n") + b".\r\n")
    await asyncio.sleep(1.5)  # past the session's end, while the message is being stored
    assert ingest.messages == []
    ingest.gate.set()
    # the message's answer, then the 421
    assert await client.rest() == (
        b"250 2.0.0 OK: queued\r\n421 4.7.0 mx.test Session time limit reached, closing\r\n"
    )
    assert [m.subject for m in ingest.messages] == ["in time"]
    await client.close()
