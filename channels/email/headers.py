"""Reading headers of inbound mail, fast and defensively.

`policy.default` semantics, with three speed-ups that matter at hundreds of messages a
second: parsed header objects are cached, the registry builds one class per header name
instead of one per header, and the MIME structure headers are read as plain strings (the
classic parameter parser is what Message's accessors use on them anyway). Every helper
degrades to the raw text rather than raise on crafted input.
"""

from __future__ import annotations

import email.message
import email.utils
import functools
import re
from collections.abc import Mapping
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import getaddresses
from typing import Any

from channels.email import feed
from channels.email.limits import HostileMessage
from channels.email.text import clean_line
from inbox.errors import ValidationError
from inbox.identity import normalize_email

MSG_ID = re.compile(r"<([^<>\s]{1,250})>")
_BARE_ID = re.compile(r"[\x21-\x7e]{1,250}")
_ANGLE_ADDR = re.compile(r"<([^<>\s@]{1,64}@[^<>\s@]{1,255})>")
_LOOSE_ADDR = re.compile(r"[^\s<>,;:\"()\[\]]{1,64}@[^\s<>,;:\"()\[\]]{1,255}")
MAX_REFERENCES = 50
MAX_ADDRESSES = 100


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
        # parsed messages hold plain strings; a header object (a str subclass with a
        # name) is returned as it is (hasattr on a str costs an AttributeError)
        if type(value) is not str and hasattr(value, "name"):
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


class _Message(EmailMessage):
    """EmailMessage whose content type and MIME parameters (charset, boundary, filename,
    name) are parsed once per distinct header value: the feed parser and the body walk
    ask for them several times per part, and most values (`text/plain; charset=utf-8`)
    recur from message to message."""

    def _first_at(self) -> dict[str, int]:
        """Lower-cased field name -> position of its first field. Message.get scans the
        fields and lower-cases every name on each call, ~25 calls a message (the feed
        parser's and ours); this index is rebuilt whenever fields come or go (the list
        replaced or its length changed; replace_header keeps a field's place and name)."""
        fields = self._headers  # type: ignore[attr-defined]
        cached = self.__dict__.get("_first_index")
        if cached is not None and cached[0] is fields and cached[1] == len(fields):
            return cached[2]  # type: ignore[no-any-return]
        first: dict[str, int] = {}
        for i, (name, _value) in enumerate(fields):
            first.setdefault(name.lower(), i)
        self.__dict__["_first_index"] = (fields, len(fields), first)
        return first

    def get(self, name: str, failobj: Any = None) -> Any:
        # _first_at's cache test inlined: ~20 calls a message
        fields = self._headers  # type: ignore[attr-defined]
        cached = self.__dict__.get("_first_index")
        if cached is not None and cached[0] is fields and cached[1] == len(fields):
            at = cached[2].get(name.lower())
        else:
            at = self._first_at().get(name.lower())
        if at is None:
            return failobj
        key, value = self._headers[at]  # type: ignore[attr-defined]
        return self.policy.header_fetch_parse(key, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first_at()

    def get_content_type(self) -> str:
        value = self.get("content-type")
        if type(value) is str:
            return _content_type(value)
        return super().get_content_type()

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        value = self.get(header, _MISSING)
        if value is _MISSING:
            return failobj
        if type(value) is not str or len(value) > 1024:
            return super()._get_params_preserve(failobj, header)  # type: ignore[misc]
        return list(_params_preserve(value))

    def get_param(
        self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        # ~6 calls a message (charset, filename and name of each part, boundary)
        value = self.get(header, _MISSING)
        if type(value) is not str or len(value) > 1024:
            return super().get_param(param, failobj, header, unquote)
        found = _param(value, param.lower(), unquote)
        return failobj if found is _MISSING else found


@functools.lru_cache(maxsize=1024)
def _content_type(value: str) -> str:
    """The media type `Message.get_content_type` reads from a Content-Type value: before
    any ';', trimmed, lower-cased; anything but one type/subtype pair is text/plain
    (RFC 2045, 5.2)."""
    media = value.partition(";")[0].strip().lower()
    return media if media.count("/") == 1 else "text/plain"


_MISSING: Any = object()


@functools.lru_cache(maxsize=1024)
def _param(value: str, param: str, unquote: bool) -> Any:
    """What `Message.get_param` answers for a header value (str, or a 3-tuple for an
    RFC 2231 value: immutable either way); _MISSING when the parameter is absent."""
    for name, raw in _params_preserve(value):
        if name.lower() == param:
            return email.message._unquotevalue(raw) if unquote else raw  # type: ignore[attr-defined]
    return _MISSING


@functools.lru_cache(maxsize=1024)
def _params_preserve(value: str) -> tuple[tuple[str, Any], ...]:
    """The (name, value) pairs `Message._get_params_preserve` reads from a header value,
    as a pure function of the value (tuples of strings, safe to share between messages);
    a parameter without '=' is a name with an empty value."""
    pairs = []
    for item in email.message._parseparam(value):  # type: ignore[attr-defined]
        name, equals, raw = item.partition("=")
        pairs.append((name.strip(), raw.strip()) if equals else (item.strip(), ""))
    return tuple(email.utils.decode_params(pairs))


_POLICY = _CachingPolicy(header_factory=_Registry(), message_factory=_Message)


def header(name: str, value: str) -> Any:
    """A parsed header object (immutable); short ones cached, the registry is slow."""
    if len(value) > 1024:
        return _POLICY.header_factory(name, value)
    return __header_cached(name, value)


@functools.lru_cache(maxsize=1024)
def __header_cached(name: str, value: str) -> Any:
    return _POLICY.header_factory(name, value)


def parse_bytes(raw: bytes) -> Message:
    """The stdlib parser (`policy.default` semantics) with the speed-ups above."""
    return feed.parse_bytes(raw, _POLICY)


def raw_headers(msg: Message) -> dict[str, str]:
    """Lower-cased name -> first value, unfolded, without control characters."""
    out: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = clean_line(str(name), 100).lower()
        if key and key not in out:
            out[key] = clean_line(str(value), 4000)
    return out


def decoded(msg: Message, name: str, headers: Mapping[str, str], cap: int) -> str:
    """RFC 2047-decoded text of an unstructured header (Subject); the raw text if the
    header parser fails."""
    raw = headers.get(name)
    if raw is None:
        return ""
    if "=?" not in raw:
        # no encoded word: the unstructured parser gives the text back as it is (values
        # here are already free of control characters and surrogates), at ~80 µs a call
        return raw[:cap]
    try:
        return str(header(name, raw[:cap]))
    except Exception:
        return raw[:cap]


def addresses(msg: Message, name: str, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    raw = headers.get(name)
    if raw is None:
        return []
    raw = raw[:8192]
    simple = _simple_address(raw)
    if simple is not None:
        return [simple]
    try:
        parsed = header(name, raw)
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
    return found[:MAX_ADDRESSES]


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
        display = decoded_words(display)
    return display.strip(), named.group(3)


def decoded_words(text: str) -> str:
    try:
        return str(header("x-display-name", text))
    except Exception:
        return text


def sender_of(
    msg: Message, headers: Mapping[str, str], mail_from: str | None
) -> tuple[str, str | None]:
    for name in ("from", "sender"):
        for display, address in addresses(msg, name, headers):
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


def message_id(raw: str) -> str | None:
    found = MSG_ID.search(raw[:1000])
    if found:
        return found.group(1)
    bare = raw.strip()
    return bare if _BARE_ID.fullmatch(bare) else None


def return_path(headers: Mapping[str, str]) -> str | None:
    if "return-path" not in headers:
        return None
    value = headers["return-path"].strip()
    found = re.search(r"<([^<>]*)>", value)
    return (found.group(1) if found else value).strip()


def recipient_headers(headers: Mapping[str, str]) -> list[str]:
    """Addresses in the recipient headers, found loosely (for reply tokens and metadata;
    a token still has to verify, so a loose match cannot let anything in)."""
    out: list[str] = []
    for name in ("delivered-to", "x-original-to", "to", "cc"):
        out.extend(_LOOSE_ADDR.findall(headers.get(name, "")))
    return out[:MAX_ADDRESSES]
