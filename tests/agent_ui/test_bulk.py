"""Bulk actions per role and per token: one transaction per item, each checked against
the actor's rights, a result per item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inbox.cases import ActorKind, CaseStatus
from inbox.store import cases, conversations
from tests.agent_ui.conftest import three_tokens

pytestmark = pytest.mark.slow


async def _bulk(desk, who: str, body: dict):
    return await desk.client.post(
        "/agent/api/conversations/bulk", json=body, headers=desk.headers(who)
    )


async def _api(desk, token: str, body: dict):
    return await desk.client.post(
        "/api/v1/conversations/bulk", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def _two_inboxes(desk) -> tuple[int, int]:
    a = (await desk.conversation("inbox-a"))["conversation_id"]
    b = (await desk.conversation("inbox-b"))["conversation_id"]
    return a, b


async def _case(desk, cid):
    return await desk.store.read(lambda c: cases.load_case(c, cid))


def _codes(answer) -> dict[int, str]:
    return {r["id"]: ("ok" if r["ok"] else r["code"]) for r in answer["results"]}


SOON = (datetime.now(UTC) + timedelta(days=1)).isoformat()

# action body, and what the case looks like after it (for the ok items)
ACTIONS = [
    ({"action": "status", "status": "pending"}, lambda c: c.status is CaseStatus.PENDING),
    ({"action": "solve"}, lambda c: c.status is CaseStatus.SOLVED),
    ({"action": "snooze", "until": SOON}, lambda c: c.status is CaseStatus.SNOOZED),
    (
        {"action": "priority", "priority": "urgent", "reason": "vip"},
        lambda c: c.priority == "urgent",
    ),
    ({"action": "transfer", "team": "inbox-b"}, lambda c: c.team == "inbox-b"),
]


@pytest.mark.parametrize(("body", "done"), ACTIONS, ids=[a[0]["action"] for a in ACTIONS])
@pytest.mark.parametrize(
    ("who", "expect"),
    [
        ("agent_a", ("ok", "not_found")),  # own team, another team
        ("supervisor", ("ok", "ok")),
        ("admin", ("ok", "ok")),
    ],
)
async def test_each_action_per_role(desk, who, expect, body, done):
    await desk.login(who)
    a, b = await _two_inboxes(desk)
    resp = await _bulk(desk, who, {"ids": [a, b], **body})
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert _codes(answer) == {a: expect[0], b: expect[1]}
    for cid, code in ((a, expect[0]), (b, expect[1])):
        case = await _case(desk, cid)
        assert done(case) is (code == "ok"), (cid, case)
    timeline = await desk.store.read(lambda c: cases.timeline(c, a))
    assert any(e.actor == e.actor.agent(desk.people[who].id) for e in timeline)


async def test_tag_adds_to_the_tags_of_visible_items_only(desk):
    await desk.login("agent_a")
    a, b = await _two_inboxes(desk)
    await desk.store.write(lambda c: conversations.set_tags(c, a, ["old"]))
    resp = await _bulk(desk, "agent_a", {"ids": [a, b], "action": "tag", "tags": ["refund"]})
    assert _codes(await resp.json()) == {a: "ok", b: "not_found"}
    got = {
        cid: (await desk.store.read(lambda c, i=cid: conversations.get(c, i))).tags
        for cid in (a, b)
    }
    assert sorted(got[a]) == ["old", "refund"] and "refund" not in got[b]


async def test_assign_agents_to_themselves_supervisors_to_anyone(desk):
    await desk.login("agent_a")
    await desk.login("supervisor")
    ann, bob = desk.people["agent_a"].id, desk.people["agent_b"].id
    a1 = (await desk.conversation("inbox-a"))["conversation_id"]
    a2 = (await desk.conversation("inbox-a"))["conversation_id"]
    resp = await _bulk(desk, "agent_a", {"ids": [a1], "action": "assign", "agent_id": bob})
    assert _codes(await resp.json()) == {a1: "forbidden"}
    resp = await _bulk(desk, "agent_a", {"ids": [a1], "action": "assign", "agent_id": ann})
    assert _codes(await resp.json()) == {a1: "ok"}
    assert (await _case(desk, a1)).assignee_id == ann
    resp = await _bulk(desk, "supervisor", {"ids": [a2], "action": "assign", "agent_id": bob})
    assert _codes(await resp.json()) == {a2: "ok"}
    assert (await _case(desk, a2)).assignee_id == bob


async def test_refused_requests(desk):
    await desk.login("supervisor")
    a, _b = await _two_inboxes(desk)
    for body, status in [
        ({"ids": list(range(1, 202)), "action": "solve"}, 413),
        ({"ids": [], "action": "solve"}, 400),
        ({"ids": [a], "action": "explode"}, 400),
        ({"ids": [a], "action": "transfer", "inbox": "nowhere"}, 400),
        ({"ids": [a], "action": "assign", "agent_id": 99999}, 400),
        ({"ids": [a], "action": "assign", "agent_id": 2**70}, 400),  # not a database id
        ({"ids": [2**64], "action": "solve"}, 400),
        ({"ids": [a], "action": "status", "status": "resolvedish"}, 400),
    ]:
        resp = await _bulk(desk, "supervisor", body)
        assert resp.status == status, (body, await resp.text())
    assert (await _case(desk, a)).status is CaseStatus.OPEN
    resp = await desk.client.post(
        "/agent/api/conversations/bulk", json={"ids": [a], "action": "solve"}
    )
    assert resp.status == 401
    # a missing id and a conflict are per item
    resp = await _bulk(desk, "supervisor", {"ids": [a, 424242], "action": "solve"})
    assert _codes(await resp.json()) == {a: "ok", 424242: "not_found"}
    resp = await _bulk(desk, "supervisor", {"ids": [a], "action": "solve"})
    assert _codes(await resp.json())[a] == "conflict"


async def test_bulk_over_the_api_per_token(desk):
    tokens = await three_tokens(desk)
    a, b = await _two_inboxes(desk)
    body = {"ids": [a, b], "action": "status", "status": "on_hold"}
    assert (await _api(desk, tokens["reader"], body)).status == 403
    resp = await _api(desk, tokens["a-only"], body)
    assert _codes(await resp.json()) == {a: "ok", b: "not_found"}
    resp = await _api(desk, tokens["all"], {"ids": [b], "action": "transfer", "inbox": "inbox-a"})
    assert _codes(await resp.json()) == {b: "ok"}
    timeline = await desk.store.read(lambda c: cases.timeline(c, b))
    assert timeline[-1].actor.kind is ActorKind.API_TOKEN
    # a token of inbox-a cannot move work into an inbox it does not reach
    resp = await _api(
        desk, tokens["a-only"], {"ids": [a], "action": "transfer", "inbox": "inbox-b"}
    )
    assert _codes(await resp.json()) == {a: "forbidden"}
