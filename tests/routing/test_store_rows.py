"""routing.store: the assignments repository's rows as the router's (teams as team skills)
and the router's decisions as the repository's writes, in order."""

from __future__ import annotations

from datetime import UTC, datetime

from inbox.store import router_rows as a
from routing import store as rstore
from routing.decisions import Assigned, Relaxed, Requeued, SlaBreached, Unassigned


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def test_teams_and_inboxes_become_team_skills():
    agent = a.RouterAgent(3, {"billing": 7, "team:vip": 9}, ("vip", "sales"), {"chat": 2},
                          "online", True)  # fmt: skip
    row = rstore.agent_row(agent)
    assert row.skills == {"billing": 7, "team:vip": 0, "team:sales": 0}
    assert (row.id, row.capacity, row.presence, row.active) == (3, {"chat": 2}, "online", True)
    conv = a.RouterConversation(5, "email", "sales", "open", "high", ("billing",), None,
                                100.0, None, requeued=True)  # fmt: skip
    got = rstore.conv_row(conv)
    assert got.skills == ("billing", "team:sales") and got.waiting and got.requeued
    snap = rstore.snapshot_of(a.RouterSnapshot([agent], [conv], []))
    assert snap == rstore.Snapshot([row], [got], [])


def test_decisions_become_writes_in_order():
    decisions = [
        Assigned(1, 7, 100.0, "routed"),
        Unassigned(2, 7, 101.0, "offline"),
        Requeued(2, 101.0, "high", ("billing", "team:sales"), "offline"),
        Requeued(3, 102.0, "normal", (), "requeue"),
        SlaBreached(4, 103.0, "normal", "high", 60.0, 30.0),
        Relaxed(5, 104.0, ()),
    ]
    assert rstore.writes_of(decisions, {2: 50.0}) == [
        a.Assign(1, 7, _dt(100.0), "routed"),
        a.Unassign(2, 7, _dt(101.0), "offline"),
        a.Requeue(2, _dt(50.0), "high", ["billing"]),  # waits from when it first waited
        a.Requeue(3, _dt(102.0), "normal", []),
        a.Reprioritize(4, "high"),
        a.Keep(5),
    ]
