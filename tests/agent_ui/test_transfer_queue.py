"""Transfer to an inbox or a team, per role, from the conversation page and over
/api/v1: the case core moves it, the activity log names who, the router hears it is
queued in its new place and gives it to an agent of that place."""

from __future__ import annotations

import pytest

from inbox.cases import ActorKind, ChangeKind
from inbox.events import Event, EventName
from inbox.store import cases
from inbox.types import Presence
from tests.agent_ui.conftest import three_tokens

pytestmark = pytest.mark.slow


async def _post(desk, who: str, cid: int, body: dict):
    return await desk.client.post(
        f"/agent/api/conversations/{cid}/transfer", json=body, headers=desk.headers(who)
    )


async def _api(desk, token: str, cid: int, body: dict):
    return await desk.client.post(
        f"/api/v1/conversations/{cid}/transfer",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


async def _case(desk, cid: int):
    return await desk.store.read(lambda c: cases.load_case(c, cid))


async def _moves(desk, cid: int):
    timeline = await desk.store.read(lambda c: cases.timeline(c, cid))
    return [
        (e.kind, e.actor.kind, e.actor.id, e.after)
        for e in timeline
        if e.kind in (ChangeKind.INBOX, ChangeKind.TEAM)
    ]


@pytest.mark.parametrize(
    ("who", "home", "status"),
    [
        ("agent_a", "inbox-a", 200),  # an agent, a conversation of their team
        ("agent_a", "inbox-b", 404),  # another team's: not even seen
        ("supervisor", "inbox-b", 200),
        ("admin", "inbox-b", 200),
    ],
)
async def test_transfer_to_an_inbox_per_role(desk, who, home, status):
    await desk.login(who)
    cid = (await desk.conversation(home))["conversation_id"]
    to = "inbox-b" if home == "inbox-a" else "inbox-a"
    resp = await _post(desk, who, cid, {"inbox": to, "reason": "wrong desk"})
    assert resp.status == status, await resp.text()
    case = await _case(desk, cid)
    if status == 200:
        me = desk.people[who].id
        assert case.inbox == to and case.assignee_id is None
        assert await _moves(desk, cid) == [(ChangeKind.INBOX, ActorKind.AGENT, me, to)]
    else:
        assert case.inbox == home and await _moves(desk, cid) == []


async def test_the_router_gives_a_transferred_conversation_to_the_new_team(desk):
    from inbox.store import agents

    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    desk.services.bus.subscribe(EventName.CONVERSATION_QUEUED, record)
    bob = desk.people["agent_b"].id
    await desk.store.write(lambda c: agents.set_presence(c, bob, Presence.ONLINE))
    presence = {"agent_id": bob, "presence": "online"}
    await desk.services.bus.publish(Event(EventName.AGENT_PRESENCE, presence))
    await desk.login("agent_a")
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    assert (await _case(desk, cid)).assignee_id is None  # nobody of inbox-a is online
    resp = await _post(desk, "agent_a", cid, {"team": "inbox-b"})
    assert resp.status == 200, await resp.text()
    await desk.settle()
    queued = [e.data for e in events if e.data["conversation_id"] == cid]
    assert queued[-1]["team"] == "inbox-b"
    case = await _case(desk, cid)
    assert (case.inbox, case.team, case.assignee_id) == ("inbox-a", "inbox-b", bob)


async def test_transfer_refusals(desk):
    await desk.login("supervisor")
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    for body, status in [
        ({"inbox": "nowhere"}, 400),
        ({"inbox": "inbox-b", "agent_id": 1}, 400),
        ({"inbox": "inbox-a"}, 409),  # already there
    ]:
        resp = await _post(desk, "supervisor", cid, body)
        assert resp.status == status, (body, await resp.text())
    assert (await _case(desk, cid)).inbox == "inbox-a"


async def test_transfer_over_the_api_per_token(desk):
    tokens = await three_tokens(desk)
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    assert (await _api(desk, tokens["reader"], cid, {"inbox": "inbox-b"})).status == 403
    assert (await _api(desk, tokens["a-only"], cid, {"inbox": "inbox-b"})).status == 403
    assert (await _case(desk, cid)).inbox == "inbox-a"
    resp = await _api(desk, tokens["all"], cid, {"inbox": "inbox-b"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["inbox"] == "inbox-b"
    moves = await _moves(desk, cid)
    assert [(kind, actor) for kind, actor, _id, _to in moves] == [
        (ChangeKind.INBOX, ActorKind.API_TOKEN)
    ]
    # the skills transfer is still the router's
    resp = await _api(desk, tokens["all"], cid, {"skills": ["billing"]})
    assert resp.status == 200, await resp.text()
