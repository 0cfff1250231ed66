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

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^[^ \t\r\n]", re.M)
# matched on a lower-cased copy (case-insensitive regexes are several times slower)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))')
_NESTED = re.compile(rb"^content-type:\s*message/(?:rfc822|global)\b", re.M)
_DELIMITER = re.compile(rb"^--([^\r\n]{0,260})", re.M)


def header_end(raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> int:
    """Offset where the top-level header block ends; rejects an oversized block."""
    match = _HEADER_END.search(raw, 0, limits.max_header_bytes + 4)
    if match is not None:
        return match.start()
    if len(raw) > limits.max_header_bytes:
        raise HostileMessage(
            f"header block larger than {limits.max_header_bytes} bytes", field="headers"
        )
    return len(raw)


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
        for m in _BOUNDARY.finditer(lowered)
    ]
    if len(declared) > limits.max_multiparts:
        raise HostileMessage(
            f"{len(declared)} multipart containers, the limit is {limits.max_multiparts}",
            field="mime",
        )
    nested = len(_NESTED.findall(lowered))
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
