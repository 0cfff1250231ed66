"""Raw RFC 5322 bytes -> `InboundMessage` (+ attachment bytes for the file store).

A pure function: no I/O, no clock unless `received_at` is omitted. Structural limits are
checked on the raw bytes first (`limits.prescan`), then the stdlib parser
(`policy.default`) runs and every part is read defensively: bad charsets degrade, broken
headers fall back to their raw text, and a message over a limit raises `HostileMessage`
(a `ValidationError`) with the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from channels.email import tokens
from channels.email.body import AttachmentFile, Body
from channels.email.headers import (
    MAX_ADDRESSES,
    MAX_REFERENCES,
    MSG_ID,
    addresses,
    decoded,
    parse_bytes,
    raw_headers,
    recipient_headers,
    sender_of,
)
from channels.email.headers import message_id as read_message_id
from channels.email.headers import return_path as read_return_path
from channels.email.limits import DEFAULT_LIMITS, HostileMessage, ParseLimits, prescan
from channels.email.text import clean_line, clean_text, html_to_text, strip_quotes_and_signature
from inbox.mail_loops import loop_reasons
from inbox.types import Channel, InboundMessage

__all__ = ["AttachmentFile", "ParseOptions", "ParsedEmail", "parse_message"]


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What the parser needs to know about us (from the [email] settings)."""

    limits: ParseLimits = DEFAULT_LIMITS
    token_secret: str | bytes | None = None  # verifies support+TOKEN@ recipients
    reply_local: str = "support"
    reply_domain: str | None = None  # None: accept signed tokens at any domain
    instance: str | None = None  # our X-Omnidesk-Instance: mail we sent is never answered


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    message: InboundMessage
    files: tuple[AttachmentFile, ...] = ()


def parse_message(
    raw: bytes,
    options: ParseOptions = ParseOptions(),
    *,
    inbox: str = "default",
    mail_from: str | None = None,
    rcpt_tos: Sequence[str] = (),
    received_at: datetime | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> ParsedEmail:
    """Parse one message. `mail_from`/`rcpt_tos` are the SMTP envelope when known.

    Raises `ValidationError` (`HostileMessage`, `PayloadTooLarge`) with a clear reason.
    """
    limits = options.limits
    end = prescan(raw, limits)
    msg = _parse_tree(raw)
    headers = raw_headers(msg)
    content_hash = _content_hash(headers, raw[end:])
    body = Body(limits)
    body.walk(msg)

    sender, display_name = sender_of(msg, headers, mail_from)
    subject = clean_line(decoded(msg, "subject", headers, 4096), 998) or None
    message_id = read_message_id(headers.get("message-id", ""))
    in_reply = MSG_ID.findall(headers.get("in-reply-to", "")[:2000])
    references = _references(headers)

    return_path = mail_from if mail_from is not None else read_return_path(headers)
    auto_reasons = loop_reasons(
        headers,
        sender=sender,
        return_path=return_path,
        content_type=msg.get_content_type(),
        instance_id=options.instance,
    )
    recipients = [*rcpt_tos, *recipient_headers(headers)]
    token, bad_token = _conversation_token(recipients, options)
    html, full_text, display_text = _texts(body, limits)

    metadata: dict[str, Any] = {
        "headers": headers,
        "return_path": return_path,
        "content_hash": content_hash,
        "message_id": message_id,
        "received_count": body.received_count(msg),
        "recipients": [clean_line(r, 320) for r in recipients[:MAX_ADDRESSES]],
    }
    if display_text != full_text:
        metadata["original_text"] = full_text
    if auto_reasons:
        metadata["auto_reasons"] = auto_reasons
    if bad_token:
        metadata["invalid_reply_token"] = True
    _note_body(metadata, body)
    reply_to = _reply_to(msg, headers)
    if reply_to is not None:
        metadata["reply_to"] = reply_to
    if extra_metadata:
        metadata.update(extra_metadata)

    message = InboundMessage(
        channel=Channel.EMAIL,
        external_id=message_id or f"sha256:{content_hash[:40]}",
        sender=sender,
        display_name=display_name,
        text=display_text,
        html=html,
        subject=subject,
        received_at=received_at or datetime.now(UTC),
        attachments=tuple(f.attachment for f in body.files),
        conversation_token=token,
        in_reply_to=in_reply[0] if in_reply else None,
        references=references,
        auto_submitted=bool(auto_reasons),
        inbox=inbox,
        metadata=metadata,
    )
    return ParsedEmail(message=message, files=tuple(body.files))


def _parse_tree(raw: bytes) -> Message:
    """The stdlib parse of `raw`; a structure it cannot read is a `HostileMessage`."""
    try:
        return parse_bytes(raw)
    except RecursionError:
        raise HostileMessage("MIME structure nested too deeply", field="mime") from None
    except MemoryError:
        raise  # not the message's structure: the caller's limit (parse_process.py)
    except Exception as exc:  # the stdlib parser is lenient; anything else is hostile
        raise HostileMessage(f"unparseable message: {type(exc).__name__}", field="mime") from exc


def _references(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The References ids, at most MAX_REFERENCES: the first (thread root) and the latest."""
    references = tuple(MSG_ID.findall(headers.get("references", "")[:20000]))
    if len(references) > MAX_REFERENCES:
        references = (references[0], *references[-(MAX_REFERENCES - 1) :])
    return references


def _texts(body: Body, limits: ParseLimits) -> tuple[str | None, str, str]:
    """(html, full text, display text): the text falls back to the HTML's; the display
    text is the new part of a reply, with a line for each attachment not kept."""
    html = body.html()
    full_text = body.text()
    if not full_text and html:
        full_text = html_to_text(html)
    full_text = clean_text(full_text, limits.max_text_chars)
    display_text = strip_quotes_and_signature(full_text)
    if body.dropped:
        display_text += "".join(
            f"\n[attachment {d['filename']} not kept: {d['reason']}]" for d in body.dropped
        )
    return html, full_text, display_text


def _note_body(metadata: dict[str, Any], body: Body) -> None:
    """Record in `metadata` what reading the body cut, dropped or found mislabelled."""
    if body.truncated:
        metadata["truncated"] = sorted(body.truncated)
    if body.dropped:
        metadata["dropped_attachments"] = body.dropped
    if body.declared_types:
        metadata["declared_types"] = body.declared_types


def _reply_to(msg: Message, headers: Mapping[str, str]) -> str | None:
    """The first address of Reply-To, if it has one."""
    if "reply-to" not in headers:
        return None
    reply_to = [a for _, a in addresses(msg, "reply-to", headers) if "@" in a]
    return reply_to[0] if reply_to else None


def _conversation_token(
    recipients: Iterable[str], options: ParseOptions
) -> tuple[str | None, bool]:
    """(verified token, whether a tagged address failed verification)."""
    if options.token_secret is None:
        return None, False
    bad = False
    prefix = f"{options.reply_local}+".lower()
    for address in recipients:
        if not address.lower().startswith(prefix):
            continue
        token = tokens.verify(
            address, options.token_secret, options.reply_local, domain=options.reply_domain
        )
        if token is not None:
            return token, False
        bad = True
    return None, bad


def _content_hash(headers: Mapping[str, str], body: bytes) -> str:
    digest = hashlib.sha256()
    for name in ("from", "to", "cc", "date", "subject", "message-id"):
        digest.update(f"{name}:{headers.get(name, '')}\n".encode("utf-8", "surrogateescape"))
    digest.update(body.lstrip(b"\r\n"))
    return digest.hexdigest()
