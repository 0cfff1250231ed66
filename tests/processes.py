"""Helpers the multi-process tests share: an outbound SMTP relay that keeps what it
accepts, a wait for a condition, and who holds a Redis lease."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP


class Relay:
    """The outbound SMTP relay: an aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def texts(self) -> list[str]:
        """The plain-text body of each message received."""
        out = []
        for msg in self.received:
            part = msg.get_body(("plain",))
            out.append(part.get_content() if part is not None else "")
        return out

    def count(self, text: str) -> int:
        return sum(text in body for body in self.texts())


@asynccontextmanager
async def smtp_relay() -> AsyncIterator[tuple[Relay, int]]:
    """A `Relay` listening on a free local port: (relay, port)."""
    sink = Relay()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, hostname="relay.test"), "127.0.0.1", 0
    )
    try:
        yield sink, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def until(
    predicate: Callable[[], Any], seconds: float = 20.0, what: str = "condition"
) -> float:
    """Wait for `predicate` (sync or async) to be true; the monotonic time it became so."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic()
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        await asyncio.sleep(0.05)


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def gone(pid: int) -> bool:
    """The process has exited (a zombie no one reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


DUTIES_LEASE = "{omnidesk:lease}:worker-duties"  # the workers' IMAP and recovery duties


def lease_pid(redis_url: str, key: str = DUTIES_LEASE) -> int | None:
    """The pid in a lease's value ("<token>:<host>:<pid>"), if it is held."""
    import redis

    with redis.Redis.from_url(redis_url) as conn:
        raw = conn.get(key)
    return None if raw is None else int(raw.decode().rsplit(":", 1)[1])
