"""The faster feed parser must build exactly what the stdlib parser builds."""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesParser

import pytest
from emailtest_support import build_mail
from test_hostile import CASES

from channels.email import feed, headers, split

BOUNDARY_EDGE_CASES = {
    "regex metacharacters in boundary": b'From: a@x.example\r\nContent-Type: multipart/mixed; boundary="a.b*c+d?(e)[f]$^|\\\\g"\r\n\r\n'
    b"pre\r\n--a.b*c+d?(e)[f]$^|\\g\r\nContent-Type: text/plain\r\n\r\none\r\n--a.b*c+d?(e)[f]$^|\\g--  \r\nepilogue\r\n",
    "boundary with spaces and padding": b'From: a@x.example\r\nContent-Type: multipart/mixed; boundary="has space"\r\n\r\n'
    b"--has space \t\r\n\r\none\r\n--has spacex\r\nnot a delimiter\r\n--has space--\r\n",
    "bare LF delimiters": b"From: a@x.example\nContent-Type: multipart/alternative; boundary=B\n\n--B\n\nplain\n--B\nContent-Type: text/html\n\n<p>h</p>\n--B--\n",
    "nested and unterminated": b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=O\r\n\r\n--O\r\n"
    b"Content-Type: multipart/alternative; boundary=I\r\n\r\n--I\r\n\r\ninner\r\n--O--\r\n",
}


def _shape(msg: Message) -> list[object]:
    out: list[object] = []
    for part in msg.walk():
        payload = None if part.is_multipart() else part.get_payload()
        out.append(
            (
                list(part.raw_items()),
                part.get_content_type(),
                payload,
                part.preamble,
                part.epilogue,
                [type(d).__name__ for d in part.defects],
            )
        )
    return out


SAMPLES = {
    "plain": lambda: build_mail(),
    "alternative": lambda: build_mail(html="<p>x</p>"),
    "attachments": lambda: build_mail(
        attachments=(("a.bin", "application/octet-stream", b"\x00" * 3000),)
    ),
    **{name: (lambda raw=raw: raw) for name, raw in BOUNDARY_EDGE_CASES.items()},
    **{
        name: CASES[name]
        for name in (
            "unterminated multipart",
            "multipart without boundary",
            "garbage content type",
            "bare LF and CR mix",
            "60 nested multiparts",
            "300 parts",
            "NUL bytes everywhere",
            "raw 8-bit headers and filename",
            "50 nested message/rfc822",
        )
    },
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_same_tree_as_the_stdlib_parser(name: str) -> None:
    raw = SAMPLES[name]()
    expected = BytesParser(policy=headers._POLICY).parsebytes(raw)
    assert _shape(feed.parse_bytes(raw, headers._POLICY)) == _shape(expected)


def test_the_shared_stdlib_module_is_untouched() -> None:
    import email.feedparser
    import re

    assert email.feedparser.re is re
    assert feed._feedparser is not email.feedparser


# --- the well-formed fast path (split.py) against the stdlib parser ---------------------


def _tree(msg: Message) -> object:
    """Everything the parser sets on a message, recursively (the lazily built caches of
    headers._Message aside)."""
    state = {k: v for k, v in vars(msg).items() if k != "_first_index"}
    state["defects"] = [(type(d).__name__, str(d)) for d in msg.defects]
    if isinstance(msg._payload, list):  # type: ignore[attr-defined]
        state["_payload"] = [_tree(part) for part in msg._payload]  # type: ignore[attr-defined]
    return (type(msg), state)


def _stdlib(raw: bytes) -> Message:
    return BytesParser(policy=headers._POLICY).parsebytes(raw)


def _split(raw: bytes) -> Message | None:
    return split.split(raw.decode("ascii", "surrogateescape"), headers._POLICY)


REGULAR = {
    "plain": build_mail(),
    "alternative": build_mail(html="<p>x</p>"),
    "attachments": build_mail(
        html="<p>x</p>",
        attachments=(
            ("a.bin", "application/octet-stream", b"\x00" * 3000),
            ("b.png", "image/png", b"\x89PNG\r\n\x1a\n" * 100),
        ),
    ),
    "bare LF delimiters": BOUNDARY_EDGE_CASES["bare LF delimiters"],
    "regex metacharacters in boundary": BOUNDARY_EDGE_CASES["regex metacharacters in boundary"],
    "boundary with spaces and padding": BOUNDARY_EDGE_CASES["boundary with spaces and padding"],
    "CR-only lines": b"From: a@x.example\rContent-Type: multipart/mixed; boundary=c\r\r"
    b"pre\r--c\r\rone\r--c\rContent-Type: text/html\r\r<p>\r\r--c--\repi\r",
    "folded headers, preamble, epilogue, no final newline": (
        b"From: a@x.example\r\nSubject: a\r\n folded\r\n\tsubject\r\n"
        b'Content-Type: multipart/mixed;\r\n boundary="f"\r\n\r\n\r\npreamble\r\n\r\n--f\r\n'
        b"\r\n\r\n--f\r\nX-Empty:\r\n\r\n--f--  \r\n\r\nepilogue\r\n--f"
    ),
    "nested, inner epilogue": (
        b"From: a@x.example\nContent-Type: multipart/mixed; boundary=o\n\n--o\n"
        b"Content-Type: multipart/alternative; boundary=i\n\n--i\n\na\n--i--\ninner epilogue\n\n"
        b"--o\n\nb\n--o--"
    ),
}


@pytest.mark.parametrize("name", list(REGULAR))
def test_split_builds_the_stdlib_tree(name: str) -> None:
    raw = REGULAR[name]
    fast = _split(raw)
    assert fast is not None, "a regular message should not need the feed parser"
    assert _tree(fast) == _tree(_stdlib(raw))


@pytest.mark.parametrize("name", [*SAMPLES, *CASES])
def test_split_declines_or_agrees(name: str) -> None:
    raw = SAMPLES[name]() if name in SAMPLES else CASES[name]()
    try:
        expected = _tree(_stdlib(raw))
    except RecursionError:
        # too deep for the stdlib parser itself (prescan rejects such mail before it
        # parses): the fast path must not answer either
        assert _split(raw) is None
        return
    fast = _split(raw)
    if fast is not None:
        assert _tree(fast) == expected
    assert _tree(feed.parse_bytes(raw, headers._POLICY)) == expected


# pieces that change how a message splits: line breaks, delimiters, fields, blanks
_PIECES = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"--", b"-", b" ", b"\t", b":", b"From ", b"=",
    b"--c\r\n", b"--c--", b"--i\n", b"--o--\n", b"X-A: b\r\n", b" x\r\n", b"\x00", b"\xe9",
    b"Content-Type: message/rfc822\r\n", b"Content-Type: multipart/digest; boundary=c\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b'boundary="c-"', b"multipart/mixed",
]  # fmt: skip


def _mutations(raw: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) + 1)
            action = rng.random()
            if action < 0.4:
                data[at:at] = rng.choice(_PIECES)
            elif action < 0.7:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at : at + 1] = rng.choice(_PIECES)
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("name", list(REGULAR))
def test_split_agrees_on_mutations(name: str) -> None:
    rng = random.Random(name)
    taken = 0
    for raw in _mutations(REGULAR[name], rng, 400):
        fast = _split(raw)
        if fast is not None:
            taken += 1
            assert _tree(fast) == _tree(_stdlib(raw)), raw
    assert taken > 0  # some mutations stay regular: the comparison ran
