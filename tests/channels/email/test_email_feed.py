"""The faster feed parser must build exactly what the stdlib parser builds."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser

import pytest
from emailtest_support import build_mail
from test_hostile import CASES

from channels.email import feed, headers

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
