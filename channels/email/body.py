"""Walking the MIME tree of a parsed message: body text and HTML, attachments with their
bytes, under the structural limits (parts, depth, part headers, attachment count/size)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from typing import Any

from channels.email.headers import decoded_words
from channels.email.limits import HostileMessage, ParseLimits
from channels.email.sniff import sniff
from channels.email.text import (
    clean_line,
    decode_bytes,
    fix_surrogates,
    html_too_deep,
    sanitize_html,
    strip_tags,
)
from inbox.types import Attachment


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    """An attachment's bytes, to put in the file store before ingest."""

    index: int  # position in InboundMessage.attachments
    attachment: Attachment
    data: bytes
    sha256: str


@dataclass
class Body:
    limits: ParseLimits
    plain: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    files: list[AttachmentFile] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    declared_types: list[str] = field(default_factory=list)
    truncated: set[str] = field(default_factory=set)
    parts: int = 0

    def walk(self, root: Message) -> None:
        stack: list[tuple[Message, int, bool]] = [(root, 0, False)]
        while stack:
            part, depth, in_related = stack.pop()
            self.parts += 1
            if self.parts > self.limits.max_parts:
                raise HostileMessage(f"more than {self.limits.max_parts} MIME parts", field="mime")
            if depth > self.limits.max_depth:
                raise HostileMessage(
                    f"MIME nesting deeper than {self.limits.max_depth}", field="mime"
                )
            if len(part) > self.limits.max_part_headers:
                raise HostileMessage(
                    f"a MIME part has {len(part)} header fields "
                    f"(limit {self.limits.max_part_headers})",
                    field="mime",
                )
            ctype = _safe(part.get_content_type, "application/octet-stream")
            # is_multipart first: get_payload() of a leaf also tests its whole text for
            # surrogates, which only _leaf needs
            if ctype.startswith("multipart/") and part.is_multipart():
                children = part.get_payload()
                assert isinstance(children, list)  # what is_multipart tests
                related = ctype == "multipart/related"
                # reversed so that parts pop off the stack in document order
                stack.extend(
                    (child, depth + 1, related)
                    for child in reversed(children)
                    if isinstance(child, Message)  # (the parser gives only Messages here)
                )
                continue
            self._leaf(part, ctype, in_related)

    def _leaf(self, part: Message, ctype: str, in_related: bool) -> None:
        disposition = _safe(part.get_content_disposition, None)
        filename = _safe(part.get_filename, None)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            data = _payload_bytes(part)
            limit = (
                self.limits.max_text_chars if ctype == "text/plain" else self.limits.max_html_chars
            )
            if len(data) > 4 * limit:  # no charset needs more than 4 bytes a character
                data = data[: 4 * limit]
            text, _ = decode_bytes(data, _safe(part.get_content_charset, None))
            if ctype == "text/plain":
                self._add_text(self.plain, text, "text", self.limits.max_text_chars)
            else:
                self._add_text(self.html_parts, text, "html", self.limits.max_html_chars)
            return
        self._attachment(part, ctype, disposition, filename, in_related)

    def _add_text(self, into: list[str], text: str, kind: str, limit: int) -> None:
        used = sum(len(t) for t in into)
        if used + len(text) > limit:
            self.truncated.add(kind)
            text = text[: max(0, limit - used)]
        if text:
            into.append(text)

    def _attachment(
        self,
        part: Message,
        ctype: str,
        disposition: str | None,
        filename: str | None,
        in_related: bool,
    ) -> None:
        index = len(self.files) + len(self.dropped)
        name = _safe_filename(filename, index, ctype)
        if len(self.files) >= self.limits.max_attachments:
            self.dropped.append({"filename": name, "reason": "too many attachments"})
            return
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            data = _message_bytes(first if isinstance(first, Message) else part)
            name = name if filename else f"message-{index + 1}.eml"
        else:
            data = _payload_bytes(part)
        if len(data) > self.limits.max_attachment_bytes:
            self.dropped.append(
                {
                    "filename": name,
                    "reason": f"larger than {self.limits.max_attachment_bytes} bytes",
                }
            )
            return
        content_id = _content_id(part)
        sniffed = "message/rfc822" if ctype.startswith("message/") else sniff(data)
        attachment = Attachment(
            filename=name,
            content_type=sniffed,
            size=len(data),
            content_id=content_id,
            inline=disposition == "inline"
            or (disposition is None and (in_related or bool(content_id))),
        )
        self.declared_types.append(clean_line(ctype, 100))
        self.files.append(
            AttachmentFile(
                index=len(self.files),
                attachment=attachment,
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )

    def text(self) -> str:
        return "\n\n".join(t.strip("\r\n") for t in self.plain)

    def html(self) -> str | None:
        if not self.html_parts:
            return None
        source = self.html_parts[0]
        if html_too_deep(source, self.limits.max_html_depth):
            self.truncated.add("html: nested too deeply, kept as text only")
            if not self.plain:
                self.plain.append(strip_tags(source))
            return None
        return sanitize_html(source) or None

    @staticmethod
    def received_count(msg: Message) -> int:
        return sum(1 for name in msg.keys() if name.lower() == "received")


def _safe(call: Any, default: Any) -> Any:
    """Header-derived accessors of the stdlib can raise on crafted input."""
    try:
        return call()
    except Exception:
        return default


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _message_bytes(inner: Message) -> bytes:
    try:
        return inner.as_bytes(policy=policy.compat32.clone(max_line_length=0))
    except Exception:
        return b""


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "text/plain": ".txt"}


def _safe_filename(filename: str | None, index: int, ctype: str) -> str:
    filename = fix_surrogates(filename or "")[:1000]
    if "=?" in filename:  # RFC 2047 in a parameter: not standard, but what Outlook sends
        filename = decoded_words(filename)
    name = _UNSAFE_NAME.sub("_", filename).strip(" .")[-200:]
    if not name:
        name = f"attachment-{index + 1}{_EXTENSIONS.get(ctype, '')}"
    return name


def _content_id(part: Message) -> str | None:
    raw = part.get("Content-ID")
    if raw is None:
        return None
    value = clean_line(str(raw), 250).strip().strip("<>").strip()
    return value or None
