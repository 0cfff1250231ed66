"""The parser's header shortcuts give what the stdlib's own code gives."""

from __future__ import annotations

import random
from email.message import EmailMessage

import pytest

from channels.email import headers
from channels.email.text import clean_line


def test_unstructured_text_without_encoded_words_is_read_as_is() -> None:
    rng = random.Random(3)
    pieces = ["a", "Z", " ", "  ", "(", ")", '"', "\\", "<", ">", "@", ",", ";", ":", "."]
    pieces += ["é", "ü", "€", "=", "?", "_", "\t", "[", "]", "x=", "?=", "Re:", "日本"]
    for _ in range(5000):
        raw = clean_line("".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))), 998)
        if "=?" in raw:
            continue
        for cap in (4096, 7):
            expected = str(headers.header("subject", raw[:cap]))
            assert headers.decoded(None, "subject", {"subject": raw}, cap) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw, text",
    [
        ("=?utf-8?q?Caf=C3=A9?= ouvert", "Café ouvert"),
        ("=?iso-8859-1?b?Q2Fm6Q==?=", "Café"),
        ("Re: =?utf-8?b?5pel5pys?=", "Re: 日本"),
        ("plain =?bogus", "plain =?bogus"),
    ],
)
def test_encoded_words_are_still_decoded(raw: str, text: str) -> None:
    assert headers.decoded(None, "subject", {"subject": raw}, 4096) == text  # type: ignore[arg-type]


PARAM_VALUES = [
    "text/plain",
    'text/plain; charset="utf-8"',
    "text/plain; charset=UTF-8; format=flowed; delsp=yes",
    'multipart/alternative; boundary="===============123=="',
    'attachment; filename="photo.png"',
    "attachment; filename*=UTF-8''na%C3%AFve%20file.txt",
    "attachment; filename*0*=UTF-8''part%20one; filename*1=\" and two\"",
    'inline; filename="a;b.txt"; size=12',
    'application/octet-stream; name="=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf"',
    "text/plain; charset",
    'text/plain;;; charset="x\\"y"',
    "garbage",
    "TEXT/HTML ; charset=x",
    "text/plain/extra",
    "",
]


def test_content_type_default_without_the_header() -> None:
    ours = headers._POLICY.message_factory(policy=headers._POLICY)  # type: ignore[misc]
    assert ours.get_content_type() == "text/plain"
    ours.set_default_type("message/rfc822")
    assert ours.get_content_type() == "message/rfc822"


@pytest.mark.parametrize("value", PARAM_VALUES)
def test_cached_mime_parameters_match_the_stdlib(value: str) -> None:
    for name in ("content-type", "content-disposition"):
        # both read the raw value through our policy, as parsed messages do; only the
        # class differs (the stdlib's EmailMessage parses the parameters every time)
        ours = headers._POLICY.message_factory(policy=headers._POLICY)  # type: ignore[misc]
        stock = EmailMessage(policy=headers._POLICY)
        ours.set_raw(name, value)
        stock.set_raw(name, value)
        assert type(ours.get(name)) is str
        for unquote in (True, False):
            assert ours.get_params(header=name, unquote=unquote) == stock.get_params(
                header=name, unquote=unquote
            )
        # twice: the second answer comes from the cache and must not share state
        for _ in range(2):
            got = ours.get_params(header=name)
            assert got == stock.get_params(header=name)
            if got:
                got.append(("mutated", "yes"))
        for _ in range(2):
            assert ours.get_content_type() == stock.get_content_type()
            assert ours.get_content_maintype() == stock.get_content_maintype()
        for param in ("charset", "CHARSET", "boundary", "filename", "name", "size", "x"):
            for unquote in (True, False):
                # twice: the second answer comes from the cache
                for _ in range(2):
                    got = ours.get_param(param, "none", header=name, unquote=unquote)
                    assert got == stock.get_param(param, "none", header=name, unquote=unquote)
            assert ours.get_param(param, header="x-absent") is None
        assert ours.get_filename() == stock.get_filename()
        assert ours.get_content_charset() == stock.get_content_charset()
        assert ours.get_boundary() == stock.get_boundary()


def _clean_line_reference(value: str, limit: int) -> str:
    """clean_line without its shortcut for values that are already clean."""
    from channels.email.text import _LINE_CONTROL, fix_surrogates

    value = _LINE_CONTROL.sub(" ", fix_surrogates(value[: limit * 2]))
    return " ".join(value.split())[:limit]


def test_clean_line_shortcut_gives_the_same_line() -> None:
    rng = random.Random(5)
    pieces = ["a", "B", " ", "  ", "\t", "\n", "\r", "\x00", "\x7f", "\x85", "é", "~", "."]
    pieces += ["\udcff", "\ud800", "\x0b", "\u2028", "\u3000", "x" * 10, "Name: value"]
    for _ in range(20000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for limit in (0, 1, 3, 5, 100):
            assert clean_line(value, limit) == _clean_line_reference(value, limit), (value, limit)


def test_indexed_header_lookups_match_the_stdlib_scan() -> None:
    """_Message.get / `in` answer from an index of first positions; the stdlib scans.
    Random field lists (repeated names, case variants), lookups of present, absent and
    differently cased names, and the mutations that change the list in between."""
    from email.message import Message

    rng = random.Random(11)
    names = ["Subject", "subject", "SUBJECT", "To", "Received", "X-A", "x-a", "Content-Type"]
    probes = [*names, "from", "X-Missing", "content-TYPE", "received"]
    for _ in range(300):
        msg = headers.parse_bytes(b"X-Start: 1\r\n\r\nbody\r\n")
        for _ in range(rng.randint(0, 12)):
            msg.set_raw(rng.choice(names), f"v{rng.randint(0, 9)}")
        for step in range(6):
            for probe in probes:
                assert msg.get(probe, "none") == Message.get(msg, probe, "none"), probe
                assert (probe in msg) == Message.__contains__(msg, probe), probe
            what = rng.randrange(4)
            name = rng.choice(names)
            if what == 0:
                msg.set_raw(name, f"added {step}")
            elif what == 1:
                del msg[name]
            elif what == 2 and name in msg:
                msg.replace_header(name, f"replaced {step}")
            else:
                del msg[name]  # (the stdlib refuses a second Subject, To, ...)
                msg[name] = f"set {step}"
