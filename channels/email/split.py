"""A fast path for well-formed mail: the tree the stdlib feed parser builds, found by
searching the text for each boundary instead of feeding it line by line.

The feed parser reads every line through a generator, a buffer and a stack of boundary
tests (about half of parsing a typical message, and all of the time spent on a large
base64 attachment). Mail from real mailers is regular: header fields, one blank line, a
body, and for a multipart a preamble, parts that each start at a `--boundary` line and a
closing `--boundary--`. `split` builds that shape itself, with the same `Message` objects,
headers, payloads, preamble and epilogue the feed parser would produce, and answers
None for anything the feed parser would treat specially (a defect to record, a unix From
line, message/* parts, multipart/digest, a missing or repeated boundary, a header block
that does not end in a blank line). The caller then runs the feed parser, so rare shapes
cost what they always did. tests/channels/email/test_email_feed.py checks the two trees
are identical on a corpus and on random mutations of it.

Lines end at CRLF, CR or LF, as the feed parser splits them.
"""

from __future__ import annotations

import re
from email.message import Message
from email.policy import Policy

# One line of a header block: a field's first line (a name of printable ASCII but ':',
# RFC 5322 ftext; a colon; blanks; the value), a continuation (a space or a tab first),
# or the blank line that ends the block. A unix `From ` line (a space before any colon)
# is none of them.
_HEADER_LINE = re.compile(
    r"(?:([\041-\071\073-\176]+):[ \t]*([^\r\n]*)|([ \t])[^\r\n]*)?(?:\r\n|\r|\n)"
)
# What may follow `--boundary` on a delimiter line: `--` when it closes, blanks, the end
# of the line (or of the text)
_DELIMITER_TAIL = re.compile(r"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")
_EOL_AT_END = re.compile(r"(?:\r\n|\r|\n)\Z")


class _Irregular(Exception):
    """The text needs the feed parser."""


def split(text: str, policy: Policy) -> Message | None:
    """The message the feed parser builds from `text`, or None when it is irregular.

    `policy` reads header source lines as the stdlib's policies do (one-line fields are
    split here without asking it)."""
    try:
        return _part(text, 0, len(text), (), policy)
    except MemoryError:
        raise
    except Exception:
        # _Irregular, or a header accessor that failed on crafted input: what the feed
        # parser makes of it (a defect, an exception) is its answer
        return None


def _part(text: str, start: int, stop: int, outer: tuple[str, ...], policy: Policy) -> Message:
    """The part in text[start:stop] (a whole message, or a region between delimiters)."""
    factory = policy.message_factory
    assert factory is not None
    msg: Message = factory(policy=policy)
    body = _read_headers(msg, text, start, stop, policy)
    ctype = msg.get_content_type()
    maintype = ctype.partition("/")[0]
    if maintype == "message" or ctype == "multipart/digest":
        raise _Irregular  # nested messages; digest parts default to message/rfc822
    if maintype == "multipart":
        _read_multipart(msg, text, body, stop, outer, policy)
    else:
        msg.set_payload(text[body:stop])
    return msg


def _read_headers(msg: Message, text: str, at: int, stop: int, policy: Policy) -> int:
    """Set the header fields from text[at:stop]; returns where the body starts."""
    first: re.Match[str] | None = None  # the current field's first line
    folded: list[str] = []  # and its continuation lines
    while True:
        line = _HEADER_LINE.match(text, at, stop)
        if line is None:
            # not a field (no blank line before the body), or the end of the text or of
            # the part inside the header block
            raise _Irregular
        at = line.end()
        if line.group(3) is not None:
            if first is None:
                raise _Irregular  # a continuation with nothing to continue
            folded.append(line.group())
            continue
        if first is not None:
            if folded:
                msg.set_raw(*policy.header_source_parse([first.group(), *folded]))
                folded = []
            else:
                # what header_source_parse makes of one line: the name before the
                # colon, the value without its leading blanks and line break
                msg.set_raw(first.group(1), first.group(2))
        if line.group(1) is None:
            return at  # the blank line
        first = line


def _read_multipart(
    msg: Message, text: str, at: int, stop: int, outer: tuple[str, ...], policy: Policy
) -> None:
    boundary = msg.get_boundary()
    if boundary is None:
        raise _Irregular
    encoding = str(msg.get("content-transfer-encoding", "8bit")).lower()
    if encoding not in ("7bit", "8bit", "binary"):
        raise _Irregular  # the feed parser records a defect
    delimiter = "--" + boundary
    if any(d.startswith(delimiter) or delimiter.startswith(d) for d in outer):
        # a line could delimit two levels at once; the feed parser's order decides
        raise _Irregular
    line, after, closing = _next_delimiter(text, delimiter, at, stop)
    if closing:
        raise _Irregular  # a close before any part: no start boundary
    if line > at:
        # the line break before a delimiter belongs to the delimiter (RFC 2046)
        msg.preamble = _without_final_eol(text[at:line])
    while not closing:
        start = after
        line, after, closing = _next_delimiter(text, delimiter, start, stop)
        if line == start:
            raise _Irregular  # an empty part (delimiter after delimiter)
        part = _part(text, start, line, (*outer, delimiter), policy)
        if part.get_content_maintype() == "multipart":
            epilogue = part.epilogue
            part.epilogue = _without_final_eol(epilogue) if epilogue else None
        else:
            payload = part._payload  # type: ignore[attr-defined]
            part._payload = _without_final_eol(payload)  # type: ignore[attr-defined]
        msg.attach(part)
    msg.epilogue = text[after:stop]


def _next_delimiter(text: str, delimiter: str, at: int, stop: int) -> tuple[int, int, bool]:
    """(start of the next delimiter line, its end, whether it closes); a multipart must
    be closed, so no delimiter up to `stop` is irregular."""
    found = text.find(delimiter, at, stop)
    while found >= 0:
        if found == 0 or text[found - 1] in "\r\n":
            tail = _DELIMITER_TAIL.match(text, found + len(delimiter), stop)
            if tail is not None:
                return found, tail.end(), tail.group(1) is not None
        found = text.find(delimiter, found + 1, stop)
    raise _Irregular


def _without_final_eol(value: str) -> str:
    eol = _EOL_AT_END.search(value)
    return value[: eol.start()] if eol is not None else value
