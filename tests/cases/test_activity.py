"""Activity entries: who may be named how, and entries stored and read back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox.cases.activity import ROUTER, SYSTEM, ActivityEntry, Actor, ActorKind, ChangeKind

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "ident"),
    [
        (ActorKind.AGENT, None),
        (ActorKind.AGENT, "7"),
        (ActorKind.AGENT, 0),
        (ActorKind.AGENT, True),
        (ActorKind.API_TOKEN, -1),
        (ActorKind.RULE, None),
        (ActorKind.RULE, ""),
        (ActorKind.RULE, 5),
        (ActorKind.ROUTER, 1),
        (ActorKind.SYSTEM, "cron"),
    ],
)
def test_an_actor_is_named_as_its_kind_requires(kind, ident):
    with pytest.raises(ValueError, match="cannot have id"):
        Actor(kind, ident)


def test_actors_by_kind():
    assert Actor.agent(7).ref() == "7" and Actor.api_token(3).kind is ActorKind.API_TOKEN
    assert Actor.rule("vip").ref() == "vip" and ROUTER.ref() is None and SYSTEM.id is None
    assert Actor.from_ref("agent", "7") == Actor.agent(7)
    assert Actor.from_ref("rule", "vip") == Actor.rule("vip")


def test_an_entry_needs_an_aware_time_and_keeps_reasons_short():
    with pytest.raises(ValueError, match="aware"):
        ActivityEntry(1, SYSTEM, datetime(2026, 1, 1), ChangeKind.STATUS, "open", "solved")
    long = ActivityEntry(1, SYSTEM, AT, ChangeKind.STATUS, "open", "solved", "x" * 900)
    assert len(long.reason or "") == 500 and (long.reason or "").endswith("…")


actors = st.one_of(
    st.builds(Actor.agent, st.integers(1, 2**62)),
    st.builds(Actor.api_token, st.integers(1, 2**62)),
    st.builds(Actor.rule, st.text(min_size=1, max_size=200)),
    st.just(ROUTER),
    st.just(SYSTEM),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.text(max_size=50),
    st.lists(st.text(max_size=20), max_size=5).map(tuple),
)
moments = st.datetimes(
    datetime(2000, 1, 1),
    datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]),
)


@given(
    st.integers(1, 2**62),
    actors,
    moments,
    st.sampled_from(list(ChangeKind)),
    values,
    values,
    st.one_of(st.none(), st.text(max_size=500)),
)
def test_entries_are_stored_and_read_back_unchanged(cid, actor, at, kind, before, after, reason):
    entry = ActivityEntry(cid, actor, at, kind, before, after, reason)
    data = entry.to_json()
    assert data["at"].endswith("+00:00")
    back = ActivityEntry.from_json(data)
    assert back == entry and back.at.utcoffset() == timedelta(0)
