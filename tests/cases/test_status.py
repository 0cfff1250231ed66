"""Statuses: the transition table, what a customer's message does, auto-close, snoozes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inbox.cases.status import (
    TRANSITIONS,
    CaseStatus,
    ReplyEffect,
    auto_close_at,
    check_snooze,
    check_transition,
    on_customer_reply,
)
from inbox.errors import Conflict, ValidationError

S = CaseStatus
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
WINDOW = timedelta(days=7)

# the table as the issue states it, written out here so that a change to TRANSITIONS
# fails this test until the two agree again: from -> the statuses it may become
ALLOWED = {
    "open": "pending on_hold snoozed solved",
    "pending": "open on_hold snoozed solved",
    "on_hold": "open pending snoozed solved",
    "snoozed": "open pending on_hold solved",
    "solved": "open closed",
    "closed": "",
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_move_is_allowed_or_refused_with_a_reason(current, target):
    allowed = target.value in ALLOWED[current.value].split()
    assert (target in TRANSITIONS[current]) == allowed
    if allowed:
        check_transition(current, target)
        return
    with pytest.raises(Conflict) as info:
        check_transition(current, target)
    assert info.value.status == 409 and info.value.field == "status"
    if current is target:
        assert "already" in info.value.message
    elif current is S.CLOSED:
        assert "new conversation" in info.value.message
    else:
        assert f"not {target}" in info.value.message


def test_the_table_names_every_status():
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(
    ("status", "solved_ago", "effect", "after"),
    [
        (S.OPEN, None, ReplyEffect.STAYS, S.OPEN),
        (S.PENDING, None, ReplyEffect.REOPENS, S.OPEN),
        (S.ON_HOLD, None, ReplyEffect.REOPENS, S.OPEN),
        (S.SNOOZED, None, ReplyEffect.REOPENS, S.OPEN),
        (S.SOLVED, timedelta(days=1), ReplyEffect.REOPENS, S.OPEN),
        (S.SOLVED, WINDOW, ReplyEffect.REOPENS, S.OPEN),  # the window's last moment
        (S.SOLVED, WINDOW + timedelta(seconds=1), ReplyEffect.NEW_LINKED, S.SOLVED),
        (S.SOLVED, None, ReplyEffect.NEW_LINKED, S.SOLVED),  # solve time unknown
        (S.CLOSED, timedelta(minutes=1), ReplyEffect.NEW_LINKED, S.CLOSED),
    ],
)
def test_what_a_customer_reply_does(status, solved_ago, effect, after):
    solved_at = None if solved_ago is None else NOW - solved_ago
    outcome = on_customer_reply(status, solved_at=solved_at, now=NOW, reopen_window=WINDOW)
    assert (outcome.effect, outcome.status) == (effect, after)
    assert outcome.joins == (effect is not ReplyEffect.NEW_LINKED)


def test_a_zero_window_never_reopens_a_solved_case_after_the_moment_it_was_solved():
    zero = timedelta(0)
    outcome = on_customer_reply(S.SOLVED, solved_at=NOW, now=NOW, reopen_window=zero)
    assert outcome.effect is ReplyEffect.REOPENS
    later = on_customer_reply(
        S.SOLVED, solved_at=NOW, now=NOW + timedelta(seconds=1), reopen_window=zero
    )
    assert later.effect is ReplyEffect.NEW_LINKED


def test_only_solved_cases_close_by_themselves():
    after = timedelta(days=4)
    assert auto_close_at(S.SOLVED, NOW, after) == NOW + after
    assert auto_close_at(S.SOLVED, NOW, None) is None
    assert auto_close_at(S.OPEN, NOW, after) is None
    assert auto_close_at(S.CLOSED, NOW, after) is None


@pytest.mark.parametrize(
    ("until", "words"),
    [
        (NOW, "future"),
        (NOW - timedelta(hours=1), "future"),
        (NOW + timedelta(days=400), "days ahead"),
        (datetime(2026, 6, 2, 9), "time zone"),
    ],
)
def test_a_snooze_must_end_in_the_near_future(until, words):
    with pytest.raises(ValidationError) as info:
        check_snooze(until, NOW)
    assert words in info.value.message and info.value.field == "until"


def test_a_snooze_until_tomorrow_is_fine():
    check_snooze(NOW + timedelta(days=1), NOW)
