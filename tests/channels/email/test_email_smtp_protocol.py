"""ListenerSMTP's fast address path gives exactly what aiosmtpd's own `_getaddr` gives, and
its DATA reads what aiosmtpd reads without a line length limit."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP

from channels.email.smtp_protocol import Gate, ListenerSMTP


class _Handler:
    pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # aiosmtpd's SMTP makes an event loop of its own unless given one
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _pair(loop: asyncio.AbstractEventLoop, local_part_limit: int = 0) -> tuple[ListenerSMTP, SMTP]:
    ours = ListenerSMTP(_Handler(), gate=Gate(1), loop=loop)
    stock = SMTP(_Handler(), loop=loop)
    ours.local_part_limit = stock.local_part_limit = local_part_limit
    return ours, stock


CASES = [
    "",
    "<>",
    "<a@b.c>",
    " <a@b.c>",
    "\t<a@b.c>\t",
    "<customer@example.org>",
    "<support@support.example.com> SIZE=1234",
    "<a@b.c> SIZE=12 BODY=8BITMIME",
    "<a@b.c>  SIZE=12 ",
    "<a@b.c>x",
    "<a@b.c>.x",
    "<a@b.c>(comment) SIZE=1",
    "<a@b.c> (comment) SIZE=1",
    "<a@b.c> \n SIZE=1",
    "<a@b.c>\x0b(x)",
    "<a@b.c>\xa0x",
    "<a@b.c> \xa0(x) y",
    "<A.B+tag@Sub.Example.ORG>",
    "<#!$%&'*+/=?^_`{|}~-@b>",
    "<a..b@c>",
    "<.a@c>",
    "<a.@c>",
    "<a@b..c>",
    "<a@b.>",
    "<a@[127.0.0.1]>",
    '<"quoted local"@b.c>',
    '<"q"@c>',
    "<@relay.example:a@b.c>",
    "<a@b.c",
    "a@b.c",
    "a@b.c SIZE=1",
    "<a b@c>",
    "<ü@b.c>",
    "<a@bü.c>",
    "\n<a@b.c>",
    " \n<a@b.c>",
    "<(c)a@b.c>",
    "<a@b.c>>",
    "<<a@b.c>>",
    "<a@b@c>",
    "<" + "x" * 70 + "@b.c>",
]


@pytest.mark.parametrize("arg", CASES)
@pytest.mark.parametrize("limit", [0, 64])
def test_fast_getaddr_matches_aiosmtpd(
    arg: str, limit: int, loop: asyncio.AbstractEventLoop
) -> None:
    ours, stock = _pair(loop, limit)
    assert ours._getaddr(arg) == stock._getaddr(arg)


def test_fast_getaddr_matches_aiosmtpd_on_random_input(loop: asyncio.AbstractEventLoop) -> None:
    ours, stock = _pair(loop, 64)
    rng = random.Random(7)
    pieces = ["a", "Z", "9", ".", "@", "<", ">", " ", "\t", "(", ")", '"', "-", "+", "\\"]
    pieces += ["[", "]", ":", ",", ";", "\n", "\xa0", "é", "SIZE=1", "example.org"]
    for _ in range(3000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for arg in (body, f"<{body}>", f"<a@{body}>", f"<{body}@b.c>", f"<a@b.c>{body}"):
            try:
                expected = stock._getaddr(arg)
            except Exception as exc:  # the stdlib parser may raise on odd input
                with pytest.raises(type(exc)):
                    ours._getaddr(arg)
                continue
            assert ours._getaddr(arg) == expected, arg


# --- DATA: the same bytes in, the same replies and the same content out ------------------


class _Recorder:
    def __init__(self) -> None:
        self.contents: list[object] = []

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        self.contents.append(getattr(envelope, "content", None))
        self.contents.append(getattr(envelope, "original_content", None))
        return "250 2.0.0 OK"


class _NoLineLimit(SMTP):
    """aiosmtpd without its limit on line length: our DATA must read what it reads (lines
    of any length kept whole, as Postfix keeps them; the size limit still applies)."""

    line_length_limit = 1 << 30


def _long(n: int) -> bytes:
    return b"x" * (n - 2) + b"\r\n"


def _smuggle(separator: bytes) -> bytes:
    """Content that tries to end DATA early and smuggle a second message in after it."""
    return (
        b"Subject: hi\r\n\r\nhello"
        + separator
        + b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nevil\r\n.\r\n"
    )


DATA_STREAMS = {
    "plain": b"Subject: hi\r\n\r\nhello\r\n.\r\n",
    "empty": b".\r\n",
    "dot stuffing": b"..\r\n...x\r\n.a\r\nb.\r\n\r\n..\r\n.\r\n",
    "dot first line": b".hidden\r\nnext\r\n.\r\n",
    "bare LF and CR inside lines": b"a\nb\r\nc\rd\r\n\n.\r\n\r\r\n.\r\n",
    "8-bit": "Subject: café\r\n\r\n日本\r\n".encode() + b"\xff\xfe\r\n.\r\n",
    "line of 999": _long(999) + b".\r\n",
    "line of 1001": _long(1001) + b".\r\n",
    "line of 1002": _long(1002) + b"after\r\n.\r\n",
    "line of 1003": _long(1003) + b".\r\n",
    "line of 5000": _long(5000) + b"ok\r\n.\r\n",
    "dot line inside a long line": b"x" * 3000 + b".\r\n" + b"tail\r\n.\r\n",
    "long line then too much": _long(2000) + _long(900) * 10 + b".\r\n",
    "too much": _long(900) * 8 + b".\r\n",
    "exactly the size limit": _long(1000) * 6 + b".\r\n",
    "one byte over the size limit": _long(1000) * 6 + b"\r\n.\r\n",
    "long line of the size limit": _long(6000) + b".\r\n",
    "long line one over the size limit": _long(6001) + b".\r\n",
    "long line far over the size limit": _long(100_000) + b"after\r\n.\r\n",
    "long first line after a dot": b"." + _long(3000) + b"..\r\n" + b"." + _long(2000) + b".\r\n",
    "long line ending in a dot": b"." * 2500 + b"\r\n.\r\n",
    "long lines with bare LF dots": b"y" * 1500 + b"\n.\r\n" + b"z" * 1200 + b"\r\n.\n\r\n.\r\n",
    "long line with CR at a piece end": b"r" * 1000 + b"\r" + b"s" * 1500 + b"\r\n.\r\n",
    "smuggling LF dot CRLF": _smuggle(b"\n.\r\n"),
    "smuggling CRLF dot LF": _smuggle(b"\r\n.\n"),
    "smuggling LF dot LF": _smuggle(b"\n.\n"),
    "smuggling CR dot CRLF": _smuggle(b"\r.\r\n"),
    "smuggling CRLF dot CR": _smuggle(b"\r\n.\r"),
    "smuggling CR dot CR": _smuggle(b"\r.\r"),
}
SIZE_LIMIT = 6000


async def _session(port: int, body: bytes, chunk: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]

    async def command(line: bytes) -> None:
        writer.write(line)
        while True:
            reply = await reader.readline()
            replies.append(reply)
            if reply[3:4] != b"-":
                return

    await command(b"EHLO client.test\r\n")
    await command(b"MAIL FROM:<a@b.example>\r\n")
    await command(b"RCPT TO:<c@d.example>\r\n")
    await command(b"DATA\r\n")
    for start in range(0, len(body), chunk):  # also split across reads
        writer.write(body[start : start + chunk])
        await writer.drain()
    replies.append(await reader.readline())
    await command(b"QUIT\r\n")
    writer.close()
    await writer.wait_closed()
    return replies


@pytest.mark.parametrize("name", list(DATA_STREAMS))
async def test_data_is_read_as_aiosmtpd_reads_it(name: str) -> None:
    loop = asyncio.get_running_loop()
    results = []
    for make in (
        lambda h: _NoLineLimit(h, data_size_limit=SIZE_LIMIT, hostname="mx.test", loop=loop),
        lambda h: ListenerSMTP(
            h, gate=Gate(5), data_size_limit=SIZE_LIMIT, hostname="mx.test", loop=loop
        ),
    ):
        handler = _Recorder()
        server = await loop.create_server(functools.partial(make, handler), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            seen = [
                (await _session(port, DATA_STREAMS[name], chunk), list(handler.contents))
                for chunk in (1 << 20, 7)
            ]
        finally:
            server.close()
            await server.wait_closed()
        results.append(seen)
    stock, ours = results
    assert ours == stock
