"""A case's status, priority and escalation, and what time does to it (snooze ends,
auto-close, SLA warnings and breaches), each change with its activity entries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inbox.cases import (
    Actor,
    ActorKind,
    CaseStatus,
    ChangeKind,
    SlaMetric,
    SlaState,
    deescalate,
    escalate,
    next_wake,
    set_priority,
    set_status,
    tick,
)
from inbox.cases.due import Summary, summary
from inbox.errors import Conflict, ValidationError
from tests.cases.support import T0, H, new_case, policies

S = CaseStatus
ANNA = Actor.agent(7)
P = policies()


def kinds(change):
    return [(e.kind, e.before, e.after) for e in change.entries]


def test_pending_pauses_the_clocks_and_open_resumes_them():
    case = new_case(assignee_id=7, accepted_at=T0)
    pending = set_status(case, S.PENDING, actor=ANNA, at=T0 + H / 2, policies=P).case
    assert pending.assignee_id == 7  # waiting on the customer: still Anna's
    assert pending.sla.due_at(P.default.calendar) is None
    back = set_status(pending, S.OPEN, actor=ANNA, at=T0 + 5 * H, policies=P)
    assert kinds(back) == [(ChangeKind.STATUS, "pending", "open")]
    # first response: 1 h target, 30 min used before the pause
    assert back.case.sla.due_at(P.default.calendar) == T0 + 5 * H + H / 2


def test_statuses_the_config_does_not_name_keep_the_clocks_running():
    keep = policies(pause_in=frozenset({S.SNOOZED}))
    case = set_status(new_case(), S.ON_HOLD, actor=ANNA, at=T0, policies=keep).case
    assert case.sla.due_at(keep.default.calendar) == T0 + H


def test_a_snooze_releases_the_agent_and_wakes_the_case_when_it_ends():
    case = new_case(assignee_id=7, accepted_at=T0)
    until = T0 + 24 * H
    snoozed = set_status(case, S.SNOOZED, actor=ANNA, at=T0 + H / 4, policies=P, until=until)
    assert kinds(snoozed) == [
        (ChangeKind.STATUS, "open", "snoozed"),
        (ChangeKind.ASSIGNEE, 7, None),
    ]
    assert snoozed.entries[0].reason == f"until {until.isoformat()}"
    assert snoozed.case.snoozed_until == until and snoozed.case.accepted_at is None
    assert next_wake(snoozed.case, P) == until
    assert not tick(snoozed.case, until - timedelta(seconds=1), P).changed
    woken = tick(snoozed.case, until, P)
    assert kinds(woken) == [(ChangeKind.STATUS, "snoozed", "open")]
    assert woken.entries[0].actor.kind is ActorKind.SYSTEM
    assert woken.case.snoozed_until is None
    # the first-response clock counted 15 minutes before the snooze, and counts on now
    assert woken.case.sla.due_at(P.default.calendar) == until + 3 * H / 4


@pytest.mark.parametrize(
    ("until", "field"),
    [(None, "until"), (T0 - H, "until")],
)
def test_a_snooze_needs_a_future_end(until, field):
    with pytest.raises(ValidationError) as info:
        set_status(new_case(), S.SNOOZED, actor=ANNA, at=T0, policies=P, until=until)
    assert info.value.field == field


def test_until_goes_only_with_a_snooze():
    with pytest.raises(ValidationError, match="only with status snoozed"):
        set_status(new_case(), S.PENDING, actor=ANNA, at=T0, policies=P, until=T0 + H)


def test_solved_cases_close_by_themselves_and_then_never_change():
    case = new_case(assignee_id=7, accepted_at=T0)
    solved = set_status(case, S.SOLVED, actor=ANNA, at=T0 + H / 2, policies=P, reason="done")
    assert kinds(solved) == [(ChangeKind.STATUS, "open", "solved"), (ChangeKind.ASSIGNEE, 7, None)]
    assert solved.case.solved_at == T0 + H / 2
    close_at = T0 + H / 2 + P.default.auto_close_after
    assert next_wake(solved.case, P) == close_at
    closed = tick(solved.case, close_at, P)
    assert kinds(closed) == [(ChangeKind.STATUS, "solved", "closed")]
    assert next_wake(closed.case, P) is None
    # an agent reopening it a moment too late finds it closed, whether or not a sweeper ran
    with pytest.raises(Conflict, match="never changes"):
        set_status(solved.case, S.OPEN, actor=ANNA, at=close_at, policies=P)


def test_without_auto_close_a_solved_case_stays_solved():
    never = policies(auto_close_after=None)
    solved = set_status(new_case(), S.SOLVED, actor=ANNA, at=T0, policies=never).case
    assert next_wake(solved, never) is None
    assert tick(solved, T0 + 1000 * H, never).case.status is S.SOLVED


def test_reopening_by_hand_resumes_the_resolution_clock():
    solved = set_status(new_case(), S.SOLVED, actor=ANNA, at=T0 + 2 * H, policies=P).case
    reopened = set_status(solved, S.OPEN, actor=ANNA, at=T0 + 10 * H, policies=P).case
    assert reopened.solved_at is None
    resolution = reopened.sla.clock(SlaMetric.RESOLUTION)
    assert resolution.due(P.default.calendar) == T0 + 16 * H  # 8 h target, 2 h used


def test_the_sla_breach_escalates_once_and_raises_the_priority_one_level():
    case = new_case("high")
    warn_at = next_wake(case, P)
    assert warn_at == T0 + 0.8 * H
    warned = tick(case, warn_at, P)
    assert kinds(warned) == [(ChangeKind.SLA, "running", "warning")]
    assert warned.entries[0].reason == "first_response"
    breached = tick(warned.case, T0 + H + timedelta(minutes=5), P)
    assert kinds(breached) == [
        (ChangeKind.SLA, "warning", "breached"),
        (ChangeKind.PRIORITY, "high", "urgent"),
        (ChangeKind.ESCALATION, False, True),
    ]
    assert breached.entries[0].at == T0 + H  # when it happened, not when it was seen
    assert breached.entries[1].reason == "sla breach: first_response"
    assert [e.state for e in breached.sla_events] == [SlaState.BREACHED]
    assert breached.case.escalated and breached.case.priority == "urgent"
    # the clock keeps the target it breached: no new breach at the urgent target
    assert not tick(breached.case, T0 + 2 * H, P).entries


def test_an_agent_s_action_after_a_missed_breach_records_the_breach_first():
    case = new_case("normal")  # first response 4 h
    change = set_status(case, S.PENDING, actor=ANNA, at=T0 + 5 * H, policies=P)
    assert [(e.kind, e.actor.kind) for e in change.entries] == [
        (ChangeKind.SLA, ActorKind.SYSTEM),
        (ChangeKind.SLA, ActorKind.SYSTEM),
        (ChangeKind.PRIORITY, ActorKind.SYSTEM),
        (ChangeKind.ESCALATION, ActorKind.SYSTEM),
        (ChangeKind.STATUS, ActorKind.AGENT),
    ]


def test_priority_changes_need_a_reason_from_an_agent_and_bring_the_level_s_targets():
    case = new_case("normal")
    with pytest.raises(ValidationError, match="say why"):
        set_priority(case, "urgent", actor=ANNA, at=T0, policies=P)
    with pytest.raises(ValidationError, match="one of"):
        set_priority(case, "asap", actor=ANNA, at=T0, policies=P, reason="x")
    raised = set_priority(case, "urgent", actor=ANNA, at=T0 + H / 10, policies=P, reason="VIP")
    assert kinds(raised) == [(ChangeKind.PRIORITY, "normal", "urgent")]
    assert raised.entries[0].reason == "VIP"
    assert raised.case.sla.due_at(P.default.calendar) == T0 + H / 4
    with pytest.raises(Conflict, match="already urgent"):
        set_priority(raised.case, "urgent", actor=ANNA, at=T0, policies=P, reason="again")
    by_rule = set_priority(case, "low", actor=Actor.rule("vip-domains"), at=T0, policies=P)
    assert by_rule.entries[0].actor == Actor.rule("vip-domains")


def test_needs_help_escalates_with_a_note_until_a_supervisor_clears_it():
    case = new_case()
    with pytest.raises(ValidationError):
        escalate(case, actor=ANNA, at=T0, policies=P, note="   ")
    asked = escalate(case, actor=ANNA, at=T0, policies=P, note="customer threatens  to leave")
    assert kinds(asked) == [(ChangeKind.ESCALATION, False, True)]
    assert asked.entries[0].reason == "customer threatens to leave"
    with pytest.raises(Conflict, match="already escalated"):
        escalate(asked.case, actor=ANNA, at=T0, policies=P, note="again")
    boss = Actor.agent(1)
    cleared = deescalate(asked.case, actor=boss, at=T0 + H / 10, policies=P)
    assert kinds(cleared) == [(ChangeKind.ESCALATION, True, False)]
    with pytest.raises(Conflict, match="not escalated"):
        deescalate(cleared.case, actor=boss, at=T0, policies=P)


def test_nothing_due_is_no_change():
    case = new_case()
    nothing = tick(case, T0 + H / 10, P)
    assert not nothing.changed and nothing.entries == () and nothing.case == case


def test_the_summary_a_store_keeps_beside_a_case():
    case = new_case("high")
    fresh = summary(case, T0, P)
    assert fresh == Summary(wake_at=T0 + 0.8 * H, due_at=T0 + H, sla_state=SlaState.RUNNING)
    late = tick(case, T0 + 2 * H, P).case
    assert summary(late, T0 + 2 * H, P).sla_state is SlaState.BREACHED
    solved = set_status(new_case(), S.SOLVED, actor=ANNA, at=T0, policies=P).case
    assert summary(solved, T0, P) == Summary(
        wake_at=T0 + P.default.auto_close_after, due_at=None, sla_state=SlaState.MET
    )
    bare = new_case(under=policies(targets={}))
    assert summary(bare, T0, P) == Summary(None, None, None)
