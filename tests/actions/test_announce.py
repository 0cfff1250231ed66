"""What a case change announces (`inbox.actions.events_for`, pure): the events the store
tests do not already show, a breach (priority, escalation, the SLA warning and breach) and a
move from one agent to another."""

from __future__ import annotations

from inbox.actions import events_for
from inbox.cases import Actor, assign, deescalate, open_case, tick
from inbox.events import EventName
from tests.store.factories import POLICIES, T0, H


def test_a_breach_announces_the_warning_the_breach_the_priority_and_the_escalation():
    case = open_case(5, "support", "high", T0, POLICIES)
    change = tick(case, T0 + 2 * H, POLICIES)  # first response: warned at 0.8 h, due at 1 h
    events = events_for(change, T0 + 2 * H)
    assert [(e.name, dict(e.data)) for e in events] == [
        (
            EventName.CONVERSATION_PRIORITY_CHANGED,
            {
                "conversation_id": 5,
                "priority": "urgent",
                "previous_priority": "high",
                "reason": "sla breach: first_response",
            },
        ),
        (
            EventName.CONVERSATION_ESCALATED,
            {"conversation_id": 5, "escalated": True, "reason": "sla breach: first_response"},
        ),
        (
            EventName.SLA_WARNING,
            {"conversation_id": 5, "metric": "first_response", "at": (T0 + 0.8 * H).isoformat()},
        ),
        (
            EventName.SLA_BREACHED,
            {
                "conversation_id": 5,
                "metric": "first_response",
                "at": (T0 + H).isoformat(),
                "previous_priority": "high",
                "priority": "urgent",
            },
        ),
        (
            EventName.ACTIVITY_APPENDED,
            {"conversation_id": 5, "kinds": ["sla", "sla", "priority", "escalation"]},
        ),
    ]
    assert {e.at for e in events} == {T0 + 2 * H}

    calm = deescalate(change.case, actor=Actor.agent(9), at=T0 + 3 * H, policies=POLICIES)
    assert [(e.name, e.data["escalated"]) for e in events_for(calm, T0 + 3 * H)[:1]] == [
        (EventName.CONVERSATION_ESCALATED, False)
    ]


def test_a_move_between_agents_is_one_assignment_naming_the_previous_agent():
    case = open_case(5, "support", "high", T0, POLICIES)
    offered = assign(case, 7, actor=Actor.agent(1), at=T0, policies=POLICIES, reason="routed")
    moved = assign(
        offered.case, 8, actor=Actor.agent(1), at=T0, policies=POLICIES, reason="supervisor"
    )
    names = [(e.name, dict(e.data)) for e in events_for(moved, T0)]
    assert names == [
        (
            EventName.CONVERSATION_ASSIGNED,
            {"conversation_id": 5, "agent_id": 8, "reason": "supervisor", "previous_agent_id": 7},
        ),
        (EventName.ACTIVITY_APPENDED, {"conversation_id": 5, "kinds": ["assignee"]}),
    ]
    assert events_for(type(moved)(case, case), T0) == []  # nothing changed: nothing to say
