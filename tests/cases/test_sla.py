"""SLA clocks: due and warning times, pauses, breaches noted once, new targets, storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from inbox.cases.hours import DAYS, WALL_CLOCK, BusinessHours
from inbox.cases.sla import CaseSla, SlaClock, SlaMetric, SlaState, SlaTargets

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
M = SlaMetric
TARGETS = SlaTargets(first_response=H, next_response=2 * H, resolution=8 * H)


def test_a_running_clock_is_due_its_target_after_it_started_and_warns_before():
    clock = SlaClock(M.FIRST_RESPONSE, H, since=T0)
    assert clock.due(WALL_CLOCK) == T0 + H
    assert clock.warn_due(WALL_CLOCK, 0.75) == T0 + 45 * timedelta(minutes=1)
    assert clock.state(T0 + 30 * timedelta(minutes=1), WALL_CLOCK, 0.75) is SlaState.RUNNING
    assert clock.state(T0 + 50 * timedelta(minutes=1), WALL_CLOCK, 0.75) is SlaState.WARNING
    assert clock.state(T0 + H, WALL_CLOCK, 0.75) is SlaState.BREACHED


def test_a_pause_moves_the_due_time_by_as_long_as_it_lasted():
    clock = SlaClock(M.RESOLUTION, 8 * H, since=T0)
    paused = clock.pause(T0 + 2 * H, WALL_CLOCK)
    assert paused.due(WALL_CLOCK) is None and paused.used == 2 * H
    assert paused.state(T0 + 20 * H, WALL_CLOCK, 0.8) is SlaState.PAUSED
    resumed = paused.resume(T0 + 5 * H)
    assert resumed.due(WALL_CLOCK) == T0 + 11 * H


def test_business_hours_count_only_open_time():
    hours = BusinessHours.of("Europe/Berlin", {day: ["09:00-17:00"] for day in DAYS[:5]})
    friday_4pm = datetime(2026, 6, 5, 14, tzinfo=UTC)  # 16:00 in Berlin
    clock = SlaClock(M.FIRST_RESPONSE, 2 * H, since=friday_4pm)
    assert clock.due(hours) == datetime(2026, 6, 8, 8, tzinfo=UTC)  # Monday 10:00 Berlin
    assert clock.used_at(datetime(2026, 6, 7, 12, tzinfo=UTC), hours) == H


def test_a_breach_is_noted_once_with_its_warning_first():
    clock = SlaClock(M.FIRST_RESPONSE, H, since=T0)
    later, events = clock.tick(T0 + 2 * H, WALL_CLOCK, 0.5)
    assert [(e.state, e.at) for e in events] == [
        (SlaState.WARNING, T0 + H / 2),
        (SlaState.BREACHED, T0 + H),
    ]
    assert later.breached and later.warned
    again, none = later.tick(T0 + 3 * H, WALL_CLOCK, 0.5)
    assert none == [] and again == later
    assert later.next_check(WALL_CLOCK, 0.5) is None


def test_the_warning_alone_comes_when_only_it_is_due():
    clock = SlaClock(M.FIRST_RESPONSE, H, since=T0)
    assert clock.next_check(WALL_CLOCK, 0.5) == T0 + H / 2
    warned, events = clock.tick(T0 + H / 2, WALL_CLOCK, 0.5)
    assert [e.state for e in events] == [SlaState.WARNING]
    assert warned.next_check(WALL_CLOCK, 0.5) == T0 + H


def test_a_clock_paused_past_its_target_between_ticks_is_noted_as_breached():
    clock = SlaClock(M.FIRST_RESPONSE, H, since=T0).pause(T0 + 2 * H, WALL_CLOCK)
    noted, events = clock.tick(T0 + 3 * H, WALL_CLOCK, 0.8)
    assert [(e.state, e.at) for e in events] == [(SlaState.BREACHED, T0 + 3 * H)]
    assert noted.breached


def test_met_in_time_and_met_late():
    assert (
        SlaClock(M.FIRST_RESPONSE, H, since=T0)
        .stop(T0 + H / 2, WALL_CLOCK)
        .state(T0 + 5 * H, WALL_CLOCK, 0.8)
        is SlaState.MET
    )
    late = SlaClock(M.FIRST_RESPONSE, H, since=T0).stop(T0 + 2 * H, WALL_CLOCK)
    assert late.state(T0 + 5 * H, WALL_CLOCK, 0.8) is SlaState.BREACHED


def test_a_new_target_counts_what_was_used_and_a_breach_stays():
    clock = SlaClock(M.RESOLUTION, 8 * H, since=T0)
    shorter = clock.retarget(4 * H, T0 + 3 * H, WALL_CLOCK, 0.8)
    assert shorter.used == 3 * H and shorter.since == T0 + 3 * H
    assert shorter.due(WALL_CLOCK) == T0 + 4 * H
    breached, _ = clock.tick(T0 + 9 * H, WALL_CLOCK, 0.8)
    assert breached.retarget(24 * H, T0 + 9 * H, WALL_CLOCK, 0.8) == breached


def test_a_warning_is_given_again_only_when_a_longer_target_moves_it_ahead():
    clock, _ = SlaClock(M.RESOLUTION, 10 * H, since=T0).tick(T0 + 9 * H, WALL_CLOCK, 0.8)
    assert clock.warned
    assert clock.retarget(11 * H, T0 + 9 * H, WALL_CLOCK, 0.8).warned  # 9 h >= 8.8 h
    longer = clock.retarget(20 * H, T0 + 9 * H, WALL_CLOCK, 0.8)
    assert not longer.warned and longer.warn_due(WALL_CLOCK, 0.8) == T0 + 16 * H


def test_a_case_s_clocks_follow_replies():
    sla = CaseSla.opened(T0, TARGETS)
    assert {c.metric for c in sla} == {M.FIRST_RESPONSE, M.RESOLUTION}
    assert sla.due_at(WALL_CLOCK) == T0 + H
    # the customer writes again before any answer: nothing new starts
    assert sla.customer_wrote(T0 + H / 4, TARGETS, running=True) == sla
    answered = sla.agent_replied(T0 + H / 2, WALL_CLOCK)
    assert answered.clock(M.FIRST_RESPONSE).done_at == T0 + H / 2
    assert answered.due_at(WALL_CLOCK) == T0 + 8 * H
    asked = answered.customer_wrote(T0 + 2 * H, TARGETS, running=True)
    assert asked.clock(M.NEXT_RESPONSE).due(WALL_CLOCK) == T0 + 4 * H
    assert asked.due_at(WALL_CLOCK) == T0 + 4 * H
    answered_again = asked.agent_replied(T0 + 3 * H, WALL_CLOCK)
    assert answered_again.clock(M.NEXT_RESPONSE).state(T0 + 9 * H, WALL_CLOCK, 0.8) is (
        SlaState.MET
    )


def test_solving_fulfils_every_clock_and_reopening_resumes_resolution():
    sla = CaseSla.opened(T0, TARGETS).solved(T0 + 2 * H, WALL_CLOCK)
    assert all(c.done_at == T0 + 2 * H for c in sla) and not sla.awaiting
    assert sla.next_check(WALL_CLOCK, 0.8) is None
    reopened = sla.reopened(T0 + 10 * H)
    assert reopened.clock(M.RESOLUTION).due(WALL_CLOCK) == T0 + 16 * H
    assert reopened.clock(M.FIRST_RESPONSE).done_at == T0 + 2 * H


def test_targets_left_out_end_the_clocks_still_running():
    sla = CaseSla.opened(T0, TARGETS)
    fewer = sla.retargeted(SlaTargets(first_response=H / 2), T0 + H / 4, WALL_CLOCK, 0.8)
    assert [c.metric for c in fewer] == [M.FIRST_RESPONSE]
    assert fewer.due_at(WALL_CLOCK) == T0 + H / 2


durations = st.integers(1, 10**7).map(lambda s: timedelta(seconds=s, microseconds=s % 997))
moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))


@given(
    st.sampled_from(list(SlaMetric)),
    durations,
    durations,
    st.one_of(st.none(), moments),
    st.one_of(st.none(), moments),
    st.booleans(),
    st.booleans(),
)
def test_clocks_are_stored_and_read_back_unchanged(
    metric, target, used, since, done_at, warned, breached
):
    clock = SlaClock(metric, target, used, since, done_at, warned, breached)
    sla = CaseSla((clock,), awaiting=warned)
    assert CaseSla.from_json(sla.to_json()) == sla
    assert CaseSla.from_json(None) == CaseSla()
