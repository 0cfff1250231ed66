"""One test per policy rule of the pure router."""

from __future__ import annotations

import pytest

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.events import EventName
from inbox.types import Presence
from routing.core import Router
from routing.decisions import Assigned, Relaxed, Requeued, SlaBreached, Unassigned
from routing.settings import QueueRules, RelaxStep, RoutingSettings

ON = Presence.ONLINE


def make(**kw: object) -> Router:
    defaults: dict[str, object] = {"accept_timeout_seconds": 0}
    defaults.update(kw)
    return Router(RoutingSettings(**defaults))  # type: ignore[arg-type]


def assigned(decisions: list) -> list[tuple[int, int]]:
    return [(d.conversation_id, d.agent_id) for d in decisions if isinstance(d, Assigned)]


def test_best_waiting_conversation_goes_first_priority_then_wait() -> None:
    r = make()
    r.enqueue(1, 0, priority="low", channel="chat")
    r.enqueue(2, 1, priority="normal", channel="chat")
    r.enqueue(3, 2, priority="normal", channel="chat")
    r.enqueue(4, 3, priority="urgent", channel="chat")
    assert [w.conversation_id for w in r.waiting()] == [4, 2, 3, 1]
    assert r.position(3) == 3
    out = r.upsert_agent(7, {}, 5, capacity={"chat": 2}, presence=ON)
    assert assigned(out) == [(4, 7), (2, 7)]
    assert [w.conversation_id for w in r.waiting()] == [3, 1]


def test_offer_goes_to_best_skill_level_then_load_then_idle() -> None:
    r = make()
    r.upsert_agent(1, {"billing": 3}, 0, capacity={"chat": 3}, presence=ON)
    r.upsert_agent(2, {"billing": 9}, 0, capacity={"chat": 3}, presence=ON)
    r.upsert_agent(3, {"tech": 10}, 0, capacity={"chat": 3}, presence=ON)
    # best level wins while it has room
    assert assigned(r.enqueue(10, 1, priority="normal", channel="chat", skills=["billing"])) == [
        (10, 2)
    ]
    # equal level: lower load relative to capacity wins
    r.upsert_agent(4, {"billing": 9}, 2, capacity={"chat": 3}, presence=ON)
    assert assigned(r.enqueue(11, 3, priority="normal", channel="chat", skills=["billing"])) == [
        (11, 4)
    ]
    # equal level and load ratio: the one idle longest (agent 2 at t=1, agent 4 at t=3)
    assert assigned(r.enqueue(12, 4, priority="normal", channel="chat", skills=["billing"])) == [
        (12, 2)
    ]


def test_relative_load_uses_capacity() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"email": 10}, presence=ON)
    r.upsert_agent(2, {}, 0, capacity={"email": 2}, presence=ON)
    r.enqueue(1, 1, priority="normal", channel="email")  # to agent 1 (lower id, same key)
    r.enqueue(2, 2, priority="normal", channel="email")  # agent 2: 0/2 < 1/10? no: 0 < 0.1
    r.enqueue(3, 3, priority="normal", channel="email")  # agent 1: 1/10 < 1/2
    loads = {a.agent_id: a.load.get("email", 0) for a in r.agents()}
    assert loads == {1: 2, 2: 1}


def test_never_over_capacity_and_only_eligible_agents() -> None:
    r = make()
    r.upsert_agent(1, {"billing": 5}, 0, capacity={"chat": 1}, presence=ON)
    r.upsert_agent(2, {"billing": 5}, 0, capacity={"chat": 1}, presence=Presence.AWAY)
    r.upsert_agent(3, {"tech": 5}, 0, capacity={"chat": 5}, presence=ON)
    out = []
    for cid in range(3):
        out += r.enqueue(cid, cid, priority="normal", channel="chat", skills=["billing"])
    assert assigned(out) == [(0, 1)]
    assert r.waiting_count == 2
    # email capacity is separate: agent 1 has none configured beyond the default
    assert r.agent(1).load == {"chat": 1}  # type: ignore[union-attr]


def test_agent_freeing_up_pulls_best_it_can_take() -> None:
    r = make()
    r.upsert_agent(1, {"billing": 5}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat", skills=["billing"])
    r.enqueue(2, 1, priority="urgent", channel="chat", skills=["tech"])  # cannot take
    r.enqueue(3, 2, priority="low", channel="chat", skills=["billing"])
    r.enqueue(4, 3, priority="high", channel="chat")
    assert assigned(r.resolve(1, 4)) == [(4, 1)]
    assert assigned(r.resolve(4, 5)) == [(3, 1)]
    assert [w.conversation_id for w in r.waiting()] == [2]


def test_coming_online_pulls_work() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"chat": 2})
    r.enqueue(1, 0, priority="normal", channel="chat")
    assert r.waiting_count == 1
    assert assigned(r.set_presence(1, ON, 1)) == [(1, 1)]


def test_relaxation_drops_optional_then_any_agent() -> None:
    rules = QueueRules(
        "default", (RelaxStep(60, drop_optional=True), RelaxStep(300, any_agent=True))
    )
    r = make(queues={"default": rules})
    r.upsert_agent(1, {"billing": 5}, 0, capacity={"chat": 1}, presence=ON)
    r.upsert_agent(2, {"tech": 5}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat", skills=["billing"], optional_skills=["fr"])
    r.enqueue(2, 0, priority="normal", channel="chat", skills=["legal"])
    assert r.tick(59) == []
    out = r.tick(60)
    assert [type(d) for d in out] == [Relaxed, Assigned]
    assert assigned(out) == [(1, 1)]
    assert out[0].skills == ("billing",)
    out = r.tick(300)
    assert isinstance(out[0], Relaxed) and out[0].skills == ()
    assert assigned(out) == [(2, 2)]


def test_relaxation_drop_named_skill_and_per_queue() -> None:
    r = make(queues={"fr": QueueRules("fr", (RelaxStep(30, drop=frozenset({"french"})),))})
    r.upsert_agent(1, {"billing": 5}, 0, capacity={"email": 5}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="email", skills=["billing", "french"], queue="fr")
    r.enqueue(2, 0, priority="normal", channel="email", skills=["billing", "french"], queue="x")
    out = r.tick(1000)
    assert assigned(out) == [(1, 1)]  # queue "x" has no rules (and there is no default)
    assert r.conversation(2).state == "waiting"  # type: ignore[union-attr]


def test_sla_breach_raises_priority_and_emits_event() -> None:
    r = make(sla_seconds={"high": 60, "normal": 120})
    r.enqueue(1, 0, priority="normal", channel="chat")
    r.enqueue(2, 10, priority="high", channel="chat")
    assert r.tick(69) == []
    out = r.tick(70)
    assert out == [SlaBreached(2, 70, "high", "urgent", 60, 60)]
    assert out[0].event().name == EventName.SLA_BREACHED
    assert r.tick(119) == []
    assert r.tick(120) == [SlaBreached(1, 120, "normal", "high", 120, 120)]
    assert [(w.conversation_id, w.priority) for w in r.waiting()] == [(2, "urgent"), (1, "high")]
    # the next level's target counts from the breach
    assert r.tick(179) == []
    assert r.tick(180) == [SlaBreached(1, 180, "high", "urgent", 180, 60)]
    assert r.tick(100_000) == []  # no target for urgent


def test_sla_at_top_level_reports_once_and_stops_when_assigned() -> None:
    r = make(sla_seconds={"urgent": 30, "normal": 50})
    r.enqueue(1, 0, priority="urgent", channel="chat")
    assert r.tick(30) == [SlaBreached(1, 30, "urgent", "urgent", 30, 30)]
    assert r.tick(10_000) == []
    r.enqueue(2, 0, priority="normal", channel="chat")
    r.upsert_agent(1, {}, 10, capacity={"chat": 2}, presence=ON)
    assert r.tick(10_050) == []  # both assigned: no first-response timer runs


def test_offline_agent_gives_back_chats_ahead_of_others() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"chat": 1, "email": 2}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat")
    r.enqueue(2, 1, priority="normal", channel="email")
    r.accept(1, 1)
    r.accept(2, 1)
    r.upsert_agent(2, {}, 2, capacity={"chat": 0})
    r.enqueue(3, 2, priority="normal", channel="chat")  # waits: no room anywhere
    out = r.set_presence(1, Presence.OFFLINE, 10)
    assert [type(d) for d in out] == [Unassigned, Requeued]
    assert out[0].reason == "offline" and out[0].conversation_id == 1
    # the email stays with its agent; the chat is back, ahead of 3 though 3 is newer
    assert r.agent(1).assigned == (2,)  # type: ignore[union-attr]
    assert [w.conversation_id for w in r.waiting()] == [1, 3]
    assert r.waiting()[0].requeued
    out = r.upsert_agent(2, {}, 11, capacity={"chat": 1}, presence=ON)
    assert assigned(out) == [(1, 2)]


def test_requeued_stays_behind_higher_priority() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="low", channel="chat")
    r.enqueue(2, 1, priority="urgent", channel="chat")
    r.set_presence(1, Presence.OFFLINE, 2)
    assert [w.conversation_id for w in r.waiting()] == [2, 1]


def test_unaccepted_offer_is_rerouted_to_someone_else() -> None:
    r = make(accept_timeout_seconds=30)
    r.upsert_agent(1, {"b": 9}, 0, capacity={"chat": 1}, presence=ON)
    r.upsert_agent(2, {"b": 1}, 0, capacity={"chat": 1}, presence=ON)
    assert assigned(r.enqueue(1, 0, priority="normal", channel="chat", skills=["b"])) == [(1, 1)]
    assert r.tick(29) == []
    out = r.tick(30)
    assert isinstance(out[0], Unassigned) and out[0].reason == "accept_timeout"
    assert assigned(out) == [(1, 2)]
    # accepted in time: no timeout
    r.accept(1, 40)
    assert r.tick(1000) == []


def test_excluded_agent_gets_it_back_after_the_window_if_nobody_else_can() -> None:
    r = make(accept_timeout_seconds=30)
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat")
    out = r.tick(30)
    assert assigned(out) == []
    assert r.conversation(1).excluded_agents == (1,)  # type: ignore[union-attr]
    out = r.tick(60)  # the exclusion lapses: offered again (and its accept timer restarts)
    assert assigned(out) == [(1, 1)]


def test_transfer_to_agent() -> None:
    r = make()
    r.upsert_agent(1, {"b": 1}, 0, capacity={"chat": 1}, presence=ON)
    r.upsert_agent(2, {"b": 1}, 0, capacity={"chat": 1}, presence=ON)
    r.upsert_agent(3, {}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat", skills=["b"])
    r.enqueue(2, 1, priority="normal", channel="chat", skills=["b"])
    with pytest.raises(Conflict, match="lacks skills"):
        r.transfer_to_agent(1, 3, 2)
    with pytest.raises(Conflict, match="no room"):
        r.transfer_to_agent(1, 2, 2)
    r.resolve(2, 3)
    out = r.transfer_to_agent(1, 2, 4)
    assert isinstance(out[0], Unassigned) and out[0].reason == "transfer"
    assert out[1] == Assigned(1, 2, 4, "transfer", previous_agent_id=1)
    with pytest.raises(NotFound):
        r.transfer_to_agent(99, 2, 5)


def test_transfer_to_skills_requeues_ahead() -> None:
    r = make()
    r.upsert_agent(1, {"b": 1}, 0, capacity={"chat": 2}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat", skills=["b"])
    r.enqueue(2, 1, priority="normal", channel="chat", skills=["t"])
    out = r.transfer_to_skills(1, ["t"], 5)
    assert [type(d) for d in out] == [Unassigned, Requeued]
    assert [w.conversation_id for w in r.waiting()] == [1, 2]
    out = r.upsert_agent(2, {"t": 1}, 6, capacity={"chat": 1}, presence=ON)
    assert assigned(out) == [(1, 2)]


def test_unassign_requeues_and_does_not_hand_back_at_once() -> None:
    r = make(accept_timeout_seconds=20)
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat")
    out = r.unassign(1, 1)
    assert [type(d) for d in out] == [Unassigned, Requeued]
    assert r.conversation(1).state == "waiting"  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        r.unassign(1, 2)


def test_supervisor_assign_exceeds_capacity_only_when_forced() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat")
    r.enqueue(2, 1, priority="normal", channel="chat", skills=["x"])
    with pytest.raises(Conflict, match="force"):
        r.supervisor_assign(2, 1, 2)
    out = r.supervisor_assign(2, 1, 2, force=True)
    assert out == [Assigned(2, 1, 2, "supervisor", forced=True)]
    assert r.agent(1).load == {"chat": 2}  # type: ignore[union-attr]
    # over capacity: freeing one slot still leaves it full, nothing is pulled
    r.enqueue(3, 3, priority="normal", channel="chat")
    assert assigned(r.resolve(1, 4)) == []
    assert assigned(r.resolve(2, 5)) == [(3, 1)]


def test_decisions_are_plain_data_with_events() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    (d,) = r.enqueue(5, 1_700_000_000, priority="normal", channel="chat")
    assert d.assignment().conversation_id == 5
    assert d.assignment().assigned_at.timestamp() == 1_700_000_000
    assert d.event().name == EventName.CONVERSATION_ASSIGNED
    assert d.event().data == {"conversation_id": 5, "agent_id": 1, "reason": "routed"}


def test_restore_assignment_rebuilds_load() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    assert r.restore_assignment(1, 1, 0, priority="normal", channel="chat") == []
    r.enqueue(2, 1, priority="normal", channel="chat")
    assert r.waiting_count == 1
    assert assigned(r.resolve(1, 2)) == [(2, 1)]
    with pytest.raises(Conflict):
        r.restore_assignment(2, 1, 3, priority="normal", channel="chat")


def test_unknown_priority_and_agent() -> None:
    r = make()
    with pytest.raises(ValidationError):
        r.enqueue(1, 0, priority="asap", channel="chat")
    with pytest.raises(NotFound):
        r.set_presence(5, ON, 0)


def test_enqueue_again_updates_in_place() -> None:
    r = make()
    r.enqueue(1, 0, priority="low", channel="chat")
    r.enqueue(2, 1, priority="normal", channel="chat")
    r.enqueue(1, 2, priority="urgent", channel="chat", skills=["x"])
    assert [(w.conversation_id, w.required_skills) for w in r.waiting()] == [
        (1, ("x",)),
        (2, ()),
    ]
    assert r.waiting_count == 2


def test_remove_agent_requeues_everything() -> None:
    r = make()
    r.upsert_agent(1, {}, 0, capacity={"email": 2}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="email")
    r.accept(1, 0)
    out = r.remove_agent(1, 1)
    assert [type(d) for d in out] == [Unassigned, Requeued]
    assert r.agent(1) is None


def test_a_resolved_conversation_leaves_nothing_behind() -> None:
    # the router reuses a resolved conversation's object for the next new one: nothing of
    # the old one (exclusions, requeued-first, timers, bucket) may show in the new one
    r = make(accept_timeout_seconds=30)
    r.upsert_agent(1, {}, 0, capacity={"chat": 1}, presence=ON)
    r.enqueue(1, 0, priority="normal", channel="chat")
    r.tick(30)  # no accept: requeued ahead, agent 1 excluded until 60
    assert r.conversation(1).excluded_agents == (1,)  # type: ignore[union-attr]
    assert r.resolve(1, 31) == []
    assert assigned(r.enqueue(2, 32, priority="low", channel="chat")) == [(2, 1)]
    view = r.conversation(2)
    assert view is not None and view.excluded_agents == () and view.priority == "low"
    r.resolve(2, 33)
    r.enqueue(3, 34, priority="normal", channel="voice")  # nobody takes voice: it waits
    r.enqueue(1, 35, priority="normal", channel="chat")  # the same id again, afresh
    assert [(w.conversation_id, w.requeued) for w in r.waiting()] == [(3, False)]
    assert r.conversation(1).agent_id == 1  # type: ignore[union-attr]
    assert r.tick(60) == []  # the old exclusion's timer finds nothing to do
    r.accept(1, 61)
    assert r.tick(1000) == [] and r.waiting_count == 1
