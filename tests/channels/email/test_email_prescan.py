"""prescan's literal-first searches find what the plain regex searches find."""

from __future__ import annotations

import random
import re

import pytest
from test_hostile import CASES

from channels.email import limits

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _reference_header_end(raw: bytes, stop: int) -> int | None:
    match = _HEADER_END.search(raw, 0, stop)
    return match.start() if match is not None else None


def _random_bytes(rng: random.Random) -> bytes:
    pieces = [b"\r", b"\n", b"\r\n", b"a", b" ", b"\t", b"boundary", b"BOUNDARY=", b"=", b'"']
    pieces += [b"x;", b"message/", b"Content-Type: message/rfc822", b"\ncontent-type:", b"-"]
    return b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))


def test_header_end_matches_the_regex() -> None:
    rng = random.Random(11)
    for _ in range(20000):
        raw = _random_bytes(rng)
        for stop in (len(raw) + 4, 5, 0):
            settings = limits.ParseLimits(max_header_bytes=max(stop - 4, 0))
            expected = _reference_header_end(raw, settings.max_header_bytes + 4)
            try:
                got: int | None = limits.header_end(raw, settings)
            except limits.HostileMessage:
                got = None
                assert expected is None
            if expected is not None:
                assert got == expected, raw


def test_literal_first_search_matches_finditer() -> None:
    rng = random.Random(12)
    for _ in range(20000):
        data = _random_bytes(rng).lower()
        for pattern, literal in ((limits._BOUNDARY, b"boundary"), (limits._NESTED, b"message/")):
            if pattern is limits._NESTED:
                # the multiline pattern starts at a line, not at its literal: only the
                # presence test is used for it
                if literal not in data:
                    assert not pattern.findall(data)
                continue
            got = [m.span() for m in limits._finditer_from(pattern, literal, data)]
            assert got == [m.span() for m in pattern.finditer(data)], data


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_corpus_header_end(name: str) -> None:
    raw = CASES[name]()
    expected = _reference_header_end(raw, limits.DEFAULT_LIMITS.max_header_bytes + 4)
    if expected is not None:
        assert limits.header_end(raw) == expected
