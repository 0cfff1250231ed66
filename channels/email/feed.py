"""The stdlib feed parser, minus one cost: compiling a regex for every MIME boundary.

`email.feedparser` compiles `(?P<sep>--BOUNDARY)(?P<end>--)?...$` for each multipart part;
boundaries are unique per message, so Python's regex cache never hits and the compile is
about a quarter of parsing a typical message. This module runs a private copy of
`email.feedparser` (the shared module is untouched) whose `re.compile` answers that one
pattern with an equivalent prefix test plus one precompiled tail regex. Everything else
is the stdlib parser, unchanged.
"""

from __future__ import annotations

import importlib.util
import re
from email.message import Message
from email.policy import Policy
from typing import Any

from channels.email import split

_HEAD = "(?P<sep>"
_TAIL_SOURCE = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_TAIL = re.compile(_TAIL_SOURCE[1:])
_UNESCAPE = re.compile(r"\\(.)", re.S)


class _BoundaryMatcher:
    """`re.compile(_HEAD + re.escape(separator) + _TAIL_SOURCE)`, as the parser uses it."""

    __slots__ = ("separator",)

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _TAIL.match(line, len(self.separator))


class _Re:
    """The `re` module as the private feedparser copy sees it."""

    def compile(self, pattern: Any, flags: int = 0) -> Any:
        if (
            isinstance(pattern, str)
            and not flags
            and pattern.startswith(_HEAD)
            and pattern.endswith(_TAIL_SOURCE)
        ):
            escaped = pattern[len(_HEAD) : -len(_TAIL_SOURCE)]
            return _BoundaryMatcher(_UNESCAPE.sub(r"\1", escaped))
        return re.compile(pattern, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)


def _private_feedparser() -> Any:
    spec = importlib.util.find_spec("email.feedparser")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not entered in sys.modules: nobody else sees it
    module.re = _Re()  # type: ignore[attr-defined]  # a module takes any attribute
    return module


_feedparser = _private_feedparser()


def parse_bytes(raw: bytes, policy: Policy) -> Message:
    """What `BytesParser(policy=policy).parsebytes(raw)` returns, faster: well-formed
    mail is split without the feed parser (`split.split`)."""
    text = raw.decode("ascii", errors="surrogateescape")
    regular = split.split(text, policy)
    if regular is not None:
        return regular
    parser = _feedparser.FeedParser(policy=policy)
    parser.feed(text)
    message: Message = parser.close()
    return message
