"""Property tests: identity normalization and the threading rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox import threads
from inbox.errors import ValidationError
from inbox.identity import normalize_email, normalize_phone
from inbox.types import ConversationStatus

local = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20
).filter(lambda s: not s.startswith("."))
label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
emails = st.builds(
    lambda lp, d, tld: f"{lp}@{d}.{tld}", local, label, st.sampled_from(["com", "org", "de", "io"])
)


@given(
    emails,
    st.sampled_from([str.upper, str.lower, str.title, lambda s: s]),
    st.sampled_from(["", " ", "  "]),
)
def test_email_case_and_spacing_do_not_make_a_new_person(address, case, pad):
    assert normalize_email(pad + case(address) + pad) == normalize_email(address)


@given(emails)
def test_email_normalization_is_idempotent(address):
    once = normalize_email(address)
    assert normalize_email(once) == once
    assert normalize_email(f"<{address}>") == once


@given(st.text(max_size=40))
def test_email_normalization_accepts_or_says_why(text):
    try:
        out = normalize_email(text)
    except ValidationError as exc:
        assert "email" in exc.message
    else:
        assert "@" in out and out == out.casefold() and " " not in out


# US numbers: area code and exchange start with 2-9
us = st.tuples(
    st.integers(2, 9),
    st.integers(0, 99),
    st.integers(2, 9),
    st.integers(0, 99),
    st.integers(0, 9999),
)


def formats(area: str, exchange: str, line: str) -> list[str]:
    return [
        f"+1{area}{exchange}{line}",
        f"+1 ({area}) {exchange}-{line}",
        f"({area}) {exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"001 {area} {exchange} {line}",
        f"1-{area}-{exchange}-{line}",
    ]


@given(us)
def test_phone_formats_of_one_number_are_one_e164(parts):
    a1, a2, e1, e2, ln = parts
    area, exchange, line = f"{a1}{a2:02d}", f"{e1}{e2:02d}", f"{ln:04d}"
    results = {normalize_phone(f, "US") for f in formats(area, exchange, line)}
    assert results == {f"+1{area}{exchange}{line}"}
    (e164,) = results
    assert normalize_phone(e164, "DE") == e164  # idempotent, whatever the default country


@given(st.text(max_size=25))
def test_phone_normalization_accepts_or_says_why(text):
    try:
        out = normalize_phone(text)
    except ValidationError as exc:
        assert "phone" in exc.message
    else:
        assert out.startswith("+") and out[1:].isdigit()


NOW = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=7)
statuses = st.sampled_from(list(ConversationStatus))
candidates = st.one_of(
    st.none(),
    st.builds(
        threads.Candidate,
        st.integers(1, 1000),
        statuses,
        st.timedeltas(timedelta(0), timedelta(days=30)).map(lambda d: NOW - d),
        st.one_of(st.none(), st.integers(1, 3)),
    ),
)


@given(candidates, candidates, candidates, st.integers(1, 3))
def test_threading_rule(by_token, by_headers, recent, contact_id):
    choice = threads.choose(
        by_token=by_token,
        by_headers=by_headers,
        recent=recent,
        now=NOW,
        window=WINDOW,
        contact_id=contact_id,
    )
    token_ok = by_token is not None and by_token.status is not ConversationStatus.CLOSED
    foreign = by_headers is not None and by_headers.contact_id != contact_id
    headers_ok = (
        by_headers is not None
        and not foreign
        and by_headers.status is not ConversationStatus.CLOSED
    )
    recent_ok = (
        recent is not None
        and recent.status is not ConversationStatus.CLOSED
        and NOW - recent.last_message_at <= WINDOW
    )
    if token_ok:
        # a verified token joins, whoever writes
        assert choice.conversation_id == by_token.conversation_id
        assert choice.via is threads.Via.TOKEN and choice.refers_to is None
        chosen = by_token
    elif foreign:
        # headers naming another contact's conversation: a new one, flagged, nothing else
        assert choice.conversation_id is None and choice.via is threads.Via.NEW
        assert choice.refers_to == by_headers.conversation_id and not choice.reopen
        return
    elif headers_ok:
        assert choice.conversation_id == by_headers.conversation_id
        assert choice.via is threads.Via.HEADERS
        chosen = by_headers
    elif recent_ok:
        assert choice.conversation_id == recent.conversation_id and choice.via is threads.Via.RECENT
        chosen = recent
    else:
        assert (
            choice.conversation_id is None and choice.via is threads.Via.NEW and not choice.reopen
        )
        assert choice.refers_to is None
        return
    assert choice.refers_to is None
    # never into a closed conversation; reopen exactly when it was resolved
    assert chosen.status is not ConversationStatus.CLOSED
    assert choice.reopen is (chosen.status is ConversationStatus.RESOLVED)
    assert threads.next_status(chosen.status, choice) in {ConversationStatus.OPEN}


@pytest.mark.parametrize("status", list(ConversationStatus))
def test_next_status_only_reopens(status):
    choice = threads.ThreadChoice(
        1, threads.Via.TOKEN, reopen=status is ConversationStatus.RESOLVED
    )
    assert threads.next_status(status, choice) in {
        ConversationStatus.OPEN,
        ConversationStatus.CLOSED,
    }
