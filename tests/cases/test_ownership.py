"""Who holds a case: offers, accept, claim, claim by reply, unassign, transfer; and what
a customer's message does to the case it threads into."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inbox.cases import (
    Actor,
    CaseStatus,
    ChangeKind,
    InboxPolicy,
    SlaTargets,
    accept,
    agent_replied,
    assign,
    claim,
    customer_wrote,
    open_case,
    set_status,
    transfer,
    unassign,
)
from inbox.cases.activity import ROUTER
from inbox.cases.hours import DAYS, BusinessHours
from inbox.cases.status import ReplyEffect
from inbox.errors import Conflict, ValidationError
from tests.cases.support import T0, H, new_case, policies

S = CaseStatus
P = policies()
ANNA, BEN = 7, 8


def kinds(change):
    return [(e.kind, e.before, e.after, e.reason) for e in change.entries]


def test_an_offer_becomes_the_agent_s_when_accepted_and_only_by_them():
    offered = assign(new_case(), ANNA, actor=ROUTER, at=T0, policies=P, reason="routed").case
    assert offered.offered and offered.assignee_id == ANNA
    with pytest.raises(Conflict, match="not offered to you"):
        accept(offered, BEN, at=T0 + H / 60, policies=P)
    accepted = accept(offered, ANNA, at=T0 + H / 60, policies=P)
    assert kinds(accepted) == [(ChangeKind.ASSIGNEE, ANNA, ANNA, "accepted")]
    assert accepted.case.accepted_at == T0 + H / 60 and not accepted.case.offered
    again = accept(accepted.case, ANNA, at=T0 + H / 30, policies=P)
    assert not again.changed  # a second click changes nothing


def test_a_claim_takes_a_case_nobody_holds_and_names_the_holder_otherwise():
    case = new_case()
    mine = claim(case, ANNA, at=T0, policies=P)
    assert kinds(mine) == [(ChangeKind.ASSIGNEE, None, ANNA, "claimed")]
    assert mine.case.accepted_at == T0
    with pytest.raises(Conflict, match=f"agent {ANNA} already has"):
        claim(mine.case, BEN, at=T0, policies=P)
    offered = assign(case, BEN, actor=ROUTER, at=T0, policies=P, reason="routed").case
    assert claim(offered, BEN, at=T0, policies=P).case.accepted_at == T0  # accepts the offer


@pytest.mark.parametrize("status", [S.SOLVED, S.CLOSED, S.SNOOZED])
def test_nobody_holds_a_case_that_is_not_being_worked_on(status):
    case = new_case(status=status)
    with pytest.raises(Conflict, match="held by nobody"):
        claim(case, ANNA, at=T0, policies=P)


def test_replying_claims_a_waiting_case_accepts_an_offer_and_ends_the_response_clock():
    case = new_case()
    replied = agent_replied(case, ANNA, at=T0 + H / 2, policies=P)
    assert kinds(replied) == [(ChangeKind.ASSIGNEE, None, ANNA, "replied")]
    first = replied.case.sla.clocks[0]
    assert first.done_at == T0 + H / 2
    offered = assign(case, ANNA, actor=ROUTER, at=T0, policies=P, reason="routed").case
    accepted_by_reply = agent_replied(offered, ANNA, at=T0 + H / 4, policies=P)
    assert kinds(accepted_by_reply) == [(ChangeKind.ASSIGNEE, ANNA, ANNA, "replied")]


def test_replying_in_another_agent_s_case_is_refused_unless_stepping_in():
    held = claim(new_case(), ANNA, at=T0, policies=P).case
    with pytest.raises(Conflict, match=f"agent {ANNA} already has"):
        agent_replied(held, BEN, at=T0 + H / 4, policies=P)
    stepped_in = agent_replied(held, BEN, at=T0 + H / 4, policies=P, over_holder=True)
    assert stepped_in.case.assignee_id == ANNA and stepped_in.entries == ()
    closed = new_case(status=S.CLOSED)
    with pytest.raises(Conflict, match="closed"):
        agent_replied(closed, ANNA, at=T0, policies=P)


def test_unassign_and_supervisor_assignment():
    held = claim(new_case(), ANNA, at=T0, policies=P).case
    boss = Actor.agent(1)
    moved = assign(held, BEN, actor=boss, at=T0, policies=P, reason="supervisor", accepted=True)
    assert kinds(moved) == [(ChangeKind.ASSIGNEE, ANNA, BEN, "supervisor")]
    assert moved.case.accepted_at == T0
    freed = unassign(moved.case, actor=ROUTER, at=T0, policies=P, reason="accept_timeout")
    assert kinds(freed) == [(ChangeKind.ASSIGNEE, BEN, None, "accept_timeout")]
    with pytest.raises(Conflict, match="nobody has"):
        unassign(freed.case, actor=ROUTER, at=T0, policies=P, reason="again")


def test_a_transfer_to_another_inbox_brings_its_targets_and_hours_and_frees_the_agent():
    nights = BusinessHours.of("UTC", {day: ["20:00-24:00"] for day in DAYS})
    billing = InboxPolicy(targets={"high": SlaTargets(first_response=2 * H)}, calendar=nights)
    under = policies(inboxes={"billing": billing})
    held = claim(new_case(under=under), ANNA, at=T0, policies=under).case
    moved = transfer(
        held, actor=Actor.agent(ANNA), at=T0 + H / 2, policies=under, inbox="billing",
        team="tier2", reason="a billing question",
    )  # fmt: skip
    assert kinds(moved) == [
        (ChangeKind.INBOX, "support", "billing", "a billing question"),
        (ChangeKind.TEAM, None, "tier2", "a billing question"),
        (ChangeKind.ASSIGNEE, ANNA, None, "a billing question"),
    ]
    # 30 minutes counted in support; 90 more of billing's hours, which open at 20:00
    assert moved.case.sla.due_at(nights) == T0.replace(hour=21, minute=30)
    assert [c.metric.value for c in moved.case.sla] == ["first_response"]
    with pytest.raises(Conflict, match="already there"):
        transfer(moved.case, actor=Actor.agent(ANNA), at=T0, policies=under, inbox="billing")
    with pytest.raises(ValidationError):
        transfer(moved.case, actor=Actor.agent(ANNA), at=T0, policies=under)
    to_ben = transfer(moved.case, actor=Actor.agent(ANNA), at=T0, policies=under, agent_id=BEN)
    assert to_ben.case.offered and to_ben.case.assignee_id == BEN


# -- the customer writes ----------------------------------------------------------------


def test_a_customer_reply_reopens_a_pending_case_and_starts_the_next_response_clock():
    answered = agent_replied(new_case(), ANNA, at=T0 + H / 2, policies=P).case
    pending = set_status(answered, S.PENDING, actor=Actor.agent(ANNA), at=T0 + H, policies=P).case
    message = customer_wrote(pending, T0 + 3 * H, P)
    assert message.outcome.effect is ReplyEffect.REOPENS and message.new_linked_to is None
    assert [(e.kind, e.before, e.after) for e in message.change.entries] == [
        (ChangeKind.STATUS, "pending", "open")
    ]
    assert message.change.case.assignee_id == ANNA  # still hers
    next_response = message.change.case.sla.clocks[1]
    assert next_response.metric.value == "next_response"
    assert next_response.due(P.default.calendar) == T0 + 5 * H


def test_a_customer_reply_in_the_window_reopens_a_solved_case_and_after_it_links_a_new_one():
    solved = set_status(new_case(), S.SOLVED, actor=Actor.agent(ANNA), at=T0, policies=P).case
    within = customer_wrote(solved, T0 + timedelta(days=3), P)
    assert within.outcome.effect is ReplyEffect.REOPENS
    assert within.change.case.status is S.OPEN and within.change.case.solved_at is None
    assert within.change.case.assignee_id is None  # back to the queue
    after = customer_wrote(
        solved, T0 + timedelta(days=3, hours=23), policies(auto_close_after=None)
    )
    assert after.outcome.effect is ReplyEffect.REOPENS  # window is 7 days
    late = customer_wrote(solved, T0 + timedelta(days=8), policies(auto_close_after=None))
    assert late.outcome.effect is ReplyEffect.NEW_LINKED and late.new_linked_to == solved.id
    assert late.change.case.status is S.SOLVED
    follow_up = open_case(2, "support", "normal", T0 + timedelta(days=8), P, linked_to=solved.id)
    assert follow_up.linked_to == solved.id and follow_up.status is S.OPEN


def test_a_customer_reply_to_a_case_closed_meanwhile_links_a_new_one():
    solved = set_status(new_case(), S.SOLVED, actor=Actor.agent(ANNA), at=T0, policies=P).case
    message = customer_wrote(solved, T0 + timedelta(days=5), P)  # auto-close after 4 days
    assert message.outcome.effect is ReplyEffect.NEW_LINKED
    assert message.change.case.status is S.CLOSED  # the close was due first: on record
    assert [e.after for e in message.change.entries] == ["closed"]
