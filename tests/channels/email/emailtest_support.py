"""Helpers shared by the email channel tests: a recording ingest that behaves like the
store's contract (dedupe on external id, cursor stored with the message) and builders."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid

from inbox.errors import StoreError
from inbox.types import InboundMessage, IngestResult

SECRET = "test-secret-key-0123456789abcdef"
DOMAIN = "support.example.com"


class RecordingIngest:
    """An `IngestFn` over memory: dedupes on (channel, external_id) like the real store,
    records the cursor in the same step as the message, can be told to fail."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.by_external: dict[tuple[str, str], IngestResult] = {}
        self.cursors: dict[str, str] = {}
        self.calls = 0
        self.fail_next = 0
        self.gate: asyncio.Event | None = None  # when set, ingest waits for it
        self._ids = itertools.count(1)

    async def __call__(
        self, msg: InboundMessage, *, cursor: tuple[str, str] | None = None
    ) -> IngestResult:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise StoreError("database unavailable (test)")
        key = (str(msg.channel), msg.external_id)
        if cursor is not None:
            self.cursors[cursor[0]] = cursor[1]
        if key in self.by_external:
            first = self.by_external[key]
            return IngestResult(first.message_id, first.conversation_id, first.contact_id, True)
        result = IngestResult(next(self._ids), 1, 1, False, True)
        self.by_external[key] = result
        self.messages.append(msg)
        return result

    def get_cursor(self, key: str) -> str | None:
        return self.cursors.get(key)


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll `predicate` until true or `seconds` passed; returns its last value."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def build_mail(
    *,
    sender: str = "Ann Customer <ann@customer.example>",
    to: str = f"support@{DOMAIN}",
    subject: str = "Help with my order",
    text: str = "Hello, my order 1234 has not arrived.",
    html: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
