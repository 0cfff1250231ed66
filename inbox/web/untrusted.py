"""Reading what outsiders send: JSON text, ids and text fields, refused with a
`ValidationError` that says what is wrong (and where) instead of failing further in.

Every edge reads through here: the HTTP JSON bodies (`inbox.web.http.read_json`), the web
form's JSON, socket.io packets (the composition root gives the server `SocketJson`), ids in
paths, queries and socket events. What it refuses:

* JSON nested deeper than `MAX_DEPTH` levels (the fast parser's limit; the standard
  parser would raise RecursionError a little earlier);
* integers of more than `MAX_INT_DIGITS` digits (the interpreter refuses to convert
  4,300 and more, with a ValueError that is no JSON error);
* lone surrogates (`"\\udc00"` in JSON): valid JSON, but no UTF-8 encoder takes them, so
  the store could not hold the text;
* ids that are not 1 .. 2^63-1 (what a BIGINT column holds), or not plain ASCII digits.

The fast parser (orjson) refuses all the JSON cases by itself, so a body it reads needs no
further look; only what falls back to the standard parser (integers over 64 bits, NaN,
escaped surrogates) is walked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from inbox.errors import ValidationError

MAX_DEPTH = 1024
MAX_INT_DIGITS = 100
MAX_ID = 2**63 - 1
_ID = re.compile(r"[0-9]{1,19}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValidationError(f"a number in the JSON has more than {MAX_INT_DIGITS} digits")
    return int(text)


def loads(raw: bytes | str) -> Any:
    """Parsed JSON, or ValidationError("malformed JSON: ..." or what is refused)."""
    try:
        return orjson.loads(raw)  # ~3x the standard parser's speed
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise ValidationError(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    # what orjson refuses and the standard parser takes (integers over 64 bits, NaN) is
    # taken; what neither parses is answered with the standard parser's message
    try:
        data = json.loads(raw, parse_int=_bounded_int)
    except RecursionError:
        raise ValidationError(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"malformed JSON: {exc}") from None
    where = surrogate_path(data)
    if where is not None:
        raise ValidationError(
            f"'{where}' contains a lone surrogate (an escape like \\udc00 that encodes no "
            "character); send valid Unicode text",
            field=where,
        )
    return data


def surrogate_path(value: Any, path: str = "") -> str | None:
    """Where in a parsed JSON value a string (or key) holds a lone surrogate, or None:
    `text`, `metadata.note`, `skills[2]` (the whole body is `(body)`)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return where or "(body)"
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = f"{where}.{key}" if where else str(key)
                if not key.isascii() and _SURROGATE.search(key):
                    return where or "(body)"  # (the object holding the key)
                stack.append((sub, name))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{n}]") for n, sub in enumerate(item))
    return None


def parse_id(value: str, name: str, *, minimum: int = 1) -> int:
    """An id given as text (path, query): ASCII digits, `minimum` .. 2^63-1."""
    if not _ID.fullmatch(value) or not minimum <= (number := int(value)) <= MAX_ID:
        what = "a positive whole number" if minimum == 1 else f"a whole number from {minimum}"
        raise ValidationError(f"'{name}' must be {what}, at most {MAX_ID}", field=name)
    return number


def is_id(value: Any) -> TypeGuard[int]:
    """A JSON value that can be an id: an int (not a bool) from 1 to 2^63-1."""
    return type(value) is int and 1 <= value <= MAX_ID


@dataclass(frozen=True, slots=True)
class Refused:
    """A socket.io payload `SocketJson` would not read: handlers answer with its message
    (a refusal the widget shows rather than retries) instead of getting no event at all."""

    message: str
    field: str | None = None


# the event name at the head of a socket.io EVENT payload: ["message", ...]
_EVENT_NAME = re.compile(r'\[\s*"([A-Za-z0-9_.:-]{1,64})"')
_ARGUMENT = re.compile(r"^\[\d+\]\.?")  # `[1].text`: `text` of the event's argument


class SocketJson:
    """The `json` of the socket.io server: parsing as `loads` does; a payload it refuses
    reaches the event's handler as `Refused` (as `[event, Refused]` for an EVENT packet,
    whose name is read from the raw text) instead of an exception the server would only
    log. Writing is the standard library's."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(raw: str | bytes, **_ignored: Any) -> Any:
        try:
            return loads(raw)
        except ValidationError as exc:
            where, message = exc.field, exc.message
            if where is not None and where.startswith("["):  # the path within the argument
                inner = _ARGUMENT.sub("", where) or "(data)"
                where, message = inner, message.replace(f"'{where}'", f"'{inner}'", 1)
            refused = Refused(message, where)
        text = raw if isinstance(raw, str) else raw[:200].decode("utf-8", "replace")
        head = _EVENT_NAME.match(text)
        if text.lstrip().startswith("["):
            return [head.group(1) if head else "invalid", refused]
        return refused
