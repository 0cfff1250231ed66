"""Hard limits on inbound mail and the cheap checks on raw bytes that enforce them
before the stdlib parser runs (so a crafted message costs bounded time and memory)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inbox.errors import PayloadTooLarge, ValidationError


class HostileMessage(ValidationError):
    """A message over a structural limit or too broken to read; rejected (SMTP 554)."""

    status = 422
    code = "hostile_message"


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_bytes: int = 25 * 1024 * 1024  # whole raw message
    max_header_bytes: int = 64 * 1024  # top-level header block
    max_header_count: int = 300  # top-level header fields
    max_part_headers: int = 100  # header fields of one MIME part
    max_parts: int = 250  # MIME parts (leaves and containers)
    max_multiparts: int = 64  # multipart containers (bounds nesting before parsing)
    max_nested_messages: int = 16  # message/rfc822 parts
    max_depth: int = 20  # MIME nesting
    max_lines: int = 1_000_000  # the parser works line by line (25 MB of base64: ~330k)
    max_attachments: int = 50
    max_attachment_bytes: int = 20 * 1024 * 1024  # one decoded attachment
    max_text_chars: int = 1_000_000  # plain text kept (longer is cut)
    max_html_chars: int = 2_000_000  # HTML sanitized (longer is cut)
    max_html_depth: int = 256  # deeper HTML is flattened to text, not sanitized


DEFAULT_LIMITS = ParseLimits()

_FIELD_START = re.compile(rb"^[^ \t\r\n]", re.M)
# matched on a lower-cased copy (case-insensitive regexes are several times slower)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))')
_NESTED = re.compile(rb"^content-type:\s*message/(?:rfc822|global)\b", re.M)
_DELIMITER = re.compile(rb"^--([^\r\n]{0,260})", re.M)


def header_end(raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> int:
    """Offset where the top-level header block ends; rejects an oversized block."""
    # where `\r?\n\r?\n` first matches (the regex itself tries every offset): the match
    # holds a first LF followed by LF or CRLF, and starts at the CR before that LF if any
    stop = limits.max_header_bytes + 4
    found = [at for at in (raw.find(b"\n\n", 0, stop), raw.find(b"\n\r\n", 0, stop)) if at >= 0]
    if found:
        first_lf = min(found)
        return first_lf - 1 if first_lf and raw[first_lf - 1] == 0x0D else first_lf
    if len(raw) > limits.max_header_bytes:
        raise HostileMessage(
            f"header block larger than {limits.max_header_bytes} bytes", field="headers"
        )
    return len(raw)


def _finditer_from(
    pattern: re.Pattern[bytes], literal: bytes, data: bytes
) -> list[re.Match[bytes]]:
    """`pattern.finditer(data)` for a pattern that starts with `literal`, trying it only
    where the literal occurs (bytes.find) instead of at every offset."""
    out: list[re.Match[bytes]] = []
    at = data.find(literal)
    while at >= 0:
        match = pattern.match(data, at)
        if match is not None:
            out.append(match)
            at = data.find(literal, match.end())
        else:
            at = data.find(literal, at + 1)
    return out


def prescan(raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> int:
    """Reject what the full parser must never see. Linear in the size; returns header_end."""
    if len(raw) > limits.max_bytes:
        raise PayloadTooLarge(
            f"message is {len(raw)} bytes, the limit is {limits.max_bytes}", field="size"
        )
    end = header_end(raw, limits)
    fields = len(_FIELD_START.findall(raw, 0, end))
    if fields > limits.max_header_count:
        raise HostileMessage(
            f"{fields} header fields, the limit is {limits.max_header_count}", field="headers"
        )
    lines = raw.count(b"\n")
    if lines > limits.max_lines:
        raise HostileMessage(f"{lines} lines, the limit is {limits.max_lines}", field="size")
    lowered = raw.lower()
    # boundaries are case-sensitive: find them in the lowered copy, read them from raw
    declared = [
        raw[m.start(1) : m.end(1)] if m.group(1) is not None else raw[m.start(2) : m.end(2)]
        for m in _finditer_from(_BOUNDARY, b"boundary", lowered)
    ]
    if len(declared) > limits.max_multiparts:
        raise HostileMessage(
            f"{len(declared)} multipart containers, the limit is {limits.max_multiparts}",
            field="mime",
        )
    # the multiline regex tries every offset: only where its literal occurs at all
    nested = len(_NESTED.findall(lowered)) if b"message/" in lowered else 0
    del lowered
    if nested > limits.max_nested_messages:
        raise HostileMessage(
            f"{nested} attached messages, the limit is {limits.max_nested_messages}",
            field="mime",
        )
    # every MIME part starts at a delimiter line `--boundary`; count only real ones
    if declared and raw.count(b"\n--") > limits.max_parts:
        boundaries = set(declared)
        delimiters = 0
        for match in _DELIMITER.finditer(raw):
            line = match.group(1).rstrip(b" \t")
            if line in boundaries or (line.endswith(b"--") and line[:-2] in boundaries):
                delimiters += 1
                if delimiters > limits.max_parts + len(boundaries):
                    raise HostileMessage(f"more than {limits.max_parts} MIME parts", field="mime")
    return end
