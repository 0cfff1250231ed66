"""Outbound mail kept on disk instead of sent: the email sender of a desk with no relay.

`CaptureSender` is an `inbox.ports.Sender` like `SMTPSender`: it composes the very message
the relay would get and writes it as one `.eml` file into a folder under the data
directory, as letter_opener and MailHog keep a developer's mail. Its provider id is the
Message-ID, so the outbox marks the message sent exactly as after a relay's 250. A file is
named after that Message-ID: a retried send replaces its own file and never adds a second.

`MailFolder` is the folder both sides share: the sender puts messages into it, and the
agent workspace's admin page lists (newest first) and reads them back.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

from channels.email.compose import Composer
from inbox.errors import DeliveryError
from inbox.ports import Outbound

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")
_KEY = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")


def captured_mail_dir(data_dir: Path) -> Path:
    """Where a desk without a relay keeps its outbound mail."""
    return data_dir / "captured-mail"


@dataclass(frozen=True, slots=True)
class MailSummary:
    """One captured message as a list shows it (headers as decoded text)."""

    key: str
    sender: str
    to: str
    subject: str
    date: str
    in_reply_to: str


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    summary: MailSummary
    message_id: str
    references: str
    text: str | None
    html: str | None
    attachments: tuple[str, ...]
    raw_size: int


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser cannot make sense of
        return "(unreadable)"
    return "" if value is None else " ".join(str(value).split())


def _summary(key: str, msg: EmailMessage) -> MailSummary:
    return MailSummary(
        key=key,
        sender=_header(msg, "From"),
        to=_header(msg, "To"),
        subject=_header(msg, "Subject"),
        date=_header(msg, "Date"),
        in_reply_to=_header(msg, "In-Reply-To"),
    )


def _body(msg: EmailMessage, kind: str) -> str | None:
    part = msg.get_body((kind,))
    if part is None:
        return None
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding
        return part.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]


class MailFolder:
    """A folder of captured `.eml` files; names that are not ours are ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key_for(message_id: str) -> str:
        return _UNSAFE.sub("_", message_id.strip("<>"))[:200] or "message"

    def put(self, message_id: str, data: bytes) -> str:
        """Write one message (atomically: a reader never sees half a file); its key."""
        key = self.key_for(message_id)
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{key}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / f"{key}.eml")
        return key

    def _file(self, key: str) -> Path | None:
        if not _KEY.match(key) or key.startswith("."):
            return None
        path = self.path / f"{key}.eml"
        return path if path.is_file() else None

    def list(self, limit: int = 200) -> tuple[list[MailSummary], int]:
        """The newest `limit` messages, newest first, and how many there are in all."""
        try:
            entries = [
                entry
                for entry in os.scandir(self.path)
                if entry.name.endswith(".eml")
                and not entry.name.startswith(".")
                and entry.is_file()
            ]
        except FileNotFoundError:
            return [], 0
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name), reverse=True)
        parser = BytesHeaderParser(policy=policy.default)
        out = []
        for entry in entries[:limit]:
            with open(entry.path, "rb") as fh:
                msg = parser.parse(fh)
            out.append(_summary(entry.name[: -len(".eml")], msg))
        return out, len(entries)

    def read(self, key: str) -> CapturedMessage | None:
        path = self._file(key)
        if path is None:
            return None
        raw = path.read_bytes()
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        return CapturedMessage(
            summary=_summary(key, msg),
            message_id=_header(msg, "Message-ID"),
            references=_header(msg, "References"),
            text=_body(msg, "plain"),
            html=_body(msg, "html"),
            attachments=tuple(
                part.get_filename() or part.get_content_type() for part in msg.iter_attachments()
            ),
            raw_size=len(raw),
        )


class CaptureSender:
    """The email sender that writes into a `MailFolder` instead of talking to a relay."""

    channel = "email"

    def __init__(self, folder: MailFolder, composer: Composer) -> None:
        self.folder = folder
        self.composer = composer

    async def send(self, item: Outbound) -> str:
        """Capture one message; returns its Message-ID (without angle brackets)."""
        msg = self.composer.compose(item)  # PermanentDeliveryError on bad headers
        message_id = self.composer.message_id(item)
        data = msg.as_bytes(policy=policy.SMTP)
        try:
            await asyncio.to_thread(self.folder.put, message_id, data)
        except OSError as exc:
            raise DeliveryError(f"could not capture mail in {self.folder.path}: {exc}") from exc
        return message_id
