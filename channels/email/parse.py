"""Raw RFC 5322 bytes -> `InboundMessage` (+ attachment bytes for the file store).

A pure function: no I/O, no clock unless `received_at` is omitted. Structural limits are
checked on the raw bytes first (`limits.prescan`), then the stdlib parser
(`policy.default`) runs and every part is read defensively: bad charsets degrade, broken
headers fall back to their raw text, and a message over a limit raises `HostileMessage`
(a `ValidationError`) with the reason.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses
from typing import Any

from channels.email import tokens
from channels.email.limits import DEFAULT_LIMITS, HostileMessage, ParseLimits, prescan
from channels.email.sniff import sniff
from channels.email.text import (
    clean_line,
    clean_text,
    decode_bytes,
    fix_surrogates,
    html_to_text,
    html_too_deep,
    sanitize_html,
    strip_quotes_and_signature,
    strip_tags,
)
from inbox.errors import ValidationError
from inbox.identity import normalize_email
from inbox.types import Attachment, Channel, InboundMessage


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What the parser needs to know about us (from the [email] settings)."""

    limits: ParseLimits = DEFAULT_LIMITS
    token_secret: str | bytes | None = None  # verifies support+TOKEN@ recipients
    reply_local: str = "support"
    reply_domain: str | None = None  # None: accept signed tokens at any domain
    instance: str | None = None  # our X-Omnidesk-Instance: mail we sent is never answered


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    """An attachment's bytes, to put in the file store before ingest."""

    index: int  # position in InboundMessage.attachments
    attachment: Attachment
    data: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    message: InboundMessage
    files: tuple[AttachmentFile, ...] = ()


_MSG_ID = re.compile(r"<([^<>\s]{1,250})>")
_BARE_ID = re.compile(r"[\x21-\x7e]{1,250}")
_AUTO_LOCALS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|noreply-.*|.*-noreply|bounces?"
    r"|bounce[-+].*)$",
    re.I,
)
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_ANGLE_ADDR = re.compile(r"<([^<>\s@]{1,64}@[^<>\s@]{1,255})>")
_LOOSE_ADDR = re.compile(r"[^\s<>,;:\"()\[\]]{1,64}@[^\s<>,;:\"()\[\]]{1,255}")
_MAX_REFERENCES = 50
_MAX_ADDRESSES = 100


class _Registry(HeaderRegistry):
    """The stdlib registry builds a new class with type() on every header it parses;
    build one per header name instead."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = super().__getitem__(key)
            if len(self._classes) < 512:  # unknown X- names are many; keep it bounded
                self._classes[key] = cls
        return cls


_STRUCTURE_HEADERS = frozenset(
    {"content-type", "content-disposition", "content-transfer-encoding", "mime-version"}
)


class _CachingPolicy(EmailPolicy):
    """`policy.default`, but a header is parsed once, not on every access.

    The stdlib re-parses Content-Type on every get_content_type() (the feed parser alone
    asks several times per part); header objects are immutable, so sharing them is safe.
    Only short values are cached, so the cache stays small.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        if name.lower() in _STRUCTURE_HEADERS:
            # Message's MIME accessors (get_content_type, get_param, get_boundary,
            # get_filename, get_content_charset) read these as plain strings with the
            # classic parameter parser; the RFC 5322 header parser costs ~10x more and
            # its result is not used. Unfolded, like the compat32 policy returns them.
            return "".join(value.splitlines())
        if len(value) > 1024:
            return super().header_fetch_parse(name, value)
        return _fetch_cached(self, name, value)


@functools.lru_cache(maxsize=4096)
def _fetch_cached(pol: EmailPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(pol, name, value)


_POLICY = _CachingPolicy(header_factory=_Registry())


def _header(name: str, value: str) -> Any:
    """A parsed header object (immutable); short ones cached, the registry is slow."""
    if len(value) > 1024:
        return _POLICY.header_factory(name, value)
    return _header_cached(name, value)


@functools.lru_cache(maxsize=1024)
def _header_cached(name: str, value: str) -> Any:
    return _POLICY.header_factory(name, value)


def _parser() -> BytesParser:
    return BytesParser(policy=_POLICY)


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
    try:
        msg = _parser().parsebytes(raw)
    except RecursionError:
        raise HostileMessage("MIME structure nested too deeply", field="mime") from None
    except Exception as exc:  # the stdlib parser is lenient; anything else is hostile
        raise HostileMessage(f"unparseable message: {type(exc).__name__}", field="mime") from exc

    headers = _raw_headers(msg)
    content_hash = _content_hash(headers, raw[end:])
    body = _Body(limits)
    body.walk(msg)

    sender, display_name = _sender(msg, headers, mail_from)
    subject = clean_line(_decoded(msg, "subject", headers, 4096), 998) or None
    message_id = _message_id(headers.get("message-id", ""))
    in_reply = _MSG_ID.findall(headers.get("in-reply-to", "")[:2000])
    references = tuple(_MSG_ID.findall(headers.get("references", "")[:20000]))
    if len(references) > _MAX_REFERENCES:  # the first (thread root) and the latest
        references = (references[0], *references[-(_MAX_REFERENCES - 1) :])

    return_path = mail_from if mail_from is not None else _return_path(headers)
    auto_reasons = _auto_reasons(headers, sender, return_path, msg, options.instance)
    recipients = [*rcpt_tos, *_recipient_headers(headers)]
    token, bad_token = _conversation_token(recipients, options)

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

    metadata: dict[str, Any] = {
        "headers": headers,
        "return_path": return_path,
        "content_hash": content_hash,
        "message_id": message_id,
        "received_count": body.received_count(msg),
        "recipients": [clean_line(r, 320) for r in recipients[:_MAX_ADDRESSES]],
    }
    if display_text != full_text:
        metadata["original_text"] = full_text
    if auto_reasons:
        metadata["auto_reasons"] = auto_reasons
    if bad_token:
        metadata["invalid_reply_token"] = True
    if body.truncated:
        metadata["truncated"] = sorted(body.truncated)
    if body.dropped:
        metadata["dropped_attachments"] = body.dropped
    if body.declared_types:
        metadata["declared_types"] = body.declared_types
    if "reply-to" in headers:
        reply_to = [a for _, a in _addresses(msg, "reply-to", headers) if "@" in a]
        if reply_to:
            metadata["reply_to"] = reply_to[0]
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


# --- headers ----------------------------------------------------------------------------


def _raw_headers(msg: Message) -> dict[str, str]:
    """Lower-cased name -> first value, unfolded, without control characters."""
    out: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = clean_line(str(name), 100).lower()
        if key and key not in out:
            out[key] = clean_line(str(value), 4000)
    return out


def _decoded(msg: Message, name: str, headers: Mapping[str, str], cap: int) -> str:
    """RFC 2047-decoded header text; the raw text if the header parser fails."""
    raw = headers.get(name)
    if raw is None:
        return ""
    try:
        return str(_header(name, raw[:cap]))
    except Exception:
        return raw[:cap]


def _addresses(msg: Message, name: str, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    raw = headers.get(name)
    if raw is None:
        return []
    raw = raw[:8192]
    simple = _simple_address(raw)
    if simple is not None:
        return [simple]
    try:
        parsed = _header(name, raw)
        found = [(a.display_name or "", a.addr_spec or "") for a in parsed.addresses]
    except Exception:
        try:
            found = getaddresses([raw])
        except Exception:  # RecursionError on deeply nested comments, and friends
            found = []
    if not any("@" in address for _, address in found):
        # unreadable or cut at the cap: the last <addr> of the full value still counts
        bracketed = _ANGLE_ADDR.findall(_last_raw_chars(msg, name))
        found = [("", bracketed[-1])] if bracketed else found
    return found[:_MAX_ADDRESSES]


# The common, unambiguous shapes: `addr`, `Name <addr>`, `"Name, Inc." <addr>`. Anything
# else (groups, comments, several addresses, odd quoting) goes to the full RFC 5322
# parser of policy.default, which is ~50x slower.
_ADDR_SPEC = r"([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253})"
_SIMPLE_BARE = re.compile(rf"\s*<?{_ADDR_SPEC}>?\s*")
_SIMPLE_NAMED = re.compile(
    rf'\s*(?:"((?:[^"\\]|\\.){{0,400}})"|([^"<>()@,;:\\\[\]\s][^"<>()@,;:\\\[\]]{{0,400}}?))'
    rf"\s*<{_ADDR_SPEC}>\s*"
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def _simple_address(raw: str) -> tuple[str, str] | None:
    if len(raw) > 512:  # keeps the regexes' backtracking small
        return None
    bare = _SIMPLE_BARE.fullmatch(raw)
    if bare is not None:
        return "", bare.group(1)
    named = _SIMPLE_NAMED.fullmatch(raw)
    if named is None:
        return None
    if named.group(1) is not None:
        display = _QUOTED_PAIR.sub(r"\1", named.group(1))
    else:
        display = named.group(2)
    if "=?" in display:  # RFC 2047 encoded words
        display = _decoded_words(display)
    return display.strip(), named.group(3)


def _decoded_words(text: str) -> str:
    try:
        return str(_header("x-display-name", text))
    except Exception:
        return text


def _sender(
    msg: Message, headers: Mapping[str, str], mail_from: str | None
) -> tuple[str, str | None]:
    for name in ("from", "sender"):
        for display, address in _addresses(msg, name, headers):
            try:
                normalize_email(address)
            except ValidationError:
                continue
            display = clean_line(display.replace("<", " ").replace(">", " ").replace('"', " "), 200)
            return address.strip(), display or None
    if mail_from:
        try:
            normalize_email(mail_from)
            return mail_from.strip(), None
        except ValidationError:
            pass
    raise HostileMessage("no valid sender address in From, Sender or MAIL FROM", field="from")


def _last_raw_chars(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)[-1024:]
    return ""


def _message_id(raw: str) -> str | None:
    found = _MSG_ID.search(raw[:1000])
    if found:
        return found.group(1)
    bare = raw.strip()
    return bare if _BARE_ID.fullmatch(bare) else None


def _return_path(headers: Mapping[str, str]) -> str | None:
    if "return-path" not in headers:
        return None
    value = headers["return-path"].strip()
    found = re.search(r"<([^<>]*)>", value)
    return (found.group(1) if found else value).strip()


def _recipient_headers(headers: Mapping[str, str]) -> list[str]:
    """Addresses in the recipient headers, found loosely (for reply tokens and metadata;
    a token still has to verify, so a loose match cannot let anything in)."""
    out: list[str] = []
    for name in ("delivered-to", "x-original-to", "to", "cc"):
        out.extend(_LOOSE_ADDR.findall(headers.get(name, "")))
    return out[:_MAX_ADDRESSES]


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


def _auto_reasons(
    headers: Mapping[str, str],
    sender: str,
    return_path: str | None,
    msg: Message,
    instance: str | None,
) -> list[str]:
    reasons: list[str] = []
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and not auto.startswith("no"):
        reasons.append(f"Auto-Submitted: {auto[:40]}")
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        reasons.append(f"Precedence: {precedence}")
    lists = sorted(h for h in headers if h.startswith("list-"))
    if lists:
        reasons.append(f"mailing list ({lists[0]})")
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        reasons.append("X-Auto-Response-Suppress")
    for name in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-reply"):
        if name in headers:
            reasons.append(name)
    if return_path is not None and return_path.strip() in ("", "<>"):
        reasons.append("empty Return-Path (bounce)")
    if _AUTO_LOCALS.match(sender.rpartition("@")[0]):
        reasons.append(f"automatic sender {sender.rpartition('@')[0]}")
    if msg.get_content_type() == "multipart/report":
        reasons.append("delivery or read report")
    if instance and headers.get("x-omnidesk-instance", "").strip() == instance:
        reasons.append("our own outbound mail (X-Omnidesk-Instance)")
    return reasons


def _content_hash(headers: Mapping[str, str], body: bytes) -> str:
    digest = hashlib.sha256()
    for name in ("from", "to", "cc", "date", "subject", "message-id"):
        digest.update(f"{name}:{headers.get(name, '')}\n".encode("utf-8", "surrogateescape"))
    digest.update(body.lstrip(b"\r\n"))
    return digest.hexdigest()


# --- body -------------------------------------------------------------------------------


@dataclass
class _Body:
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
            payload = part.get_payload()
            if ctype.startswith("multipart/") and isinstance(payload, list):
                related = ctype == "multipart/related"
                # reversed so that parts pop off the stack in document order
                stack.extend((child, depth + 1, related) for child in reversed(payload))
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
            data = _message_bytes(inner[0] if isinstance(inner, list) and inner else part)
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
        filename = _decoded_words(filename)
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
