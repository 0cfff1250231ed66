"""Setting the priority with a reason (issue 17.3) and the activity log (17.6), from the
workspace and the API: per role and team (an agent of the conversation's inbox, of another
inbox, a supervisor, an admin) and per token (read-write, read-only, another inbox's); what
the core refuses; the entry in the log with who, from, to and why; the cursor pages; and
the events the router and the pages hear."""

from __future__ import annotations

import json

import pytest

from inbox.events import EventName
from inbox.store import conversations
from inbox.store.tokens import create as create_token

A, B = "inbox-a", "inbox-b"


async def _post(desk, who, cid, body):
    desk.client.session.cookie_jar.clear()
    return await desk.client.post(
        f"/agent/api/conversations/{cid}/priority",
        data=json.dumps(body),
        headers=desk.headers(who),
    )


async def _priority(desk, cid) -> str:
    return (await desk.store.read(lambda c: conversations.get(c, cid))).priority


async def _activity(desk, who, cid):
    desk.client.session.cookie_jar.clear()
    return await desk.client.get(
        f"/agent/api/conversations/{cid}/activity", headers=desk.headers(who)
    )


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("agent_a", True), ("agent_b", False), ("supervisor", True), ("admin", True)],
)
async def test_who_may_set_the_priority_of_a_conversation_of_inbox_a(desk, who, allowed):
    await desk.login(who)
    cid = (await desk.conversation(A))["conversation_id"]
    before = await _priority(desk, cid)
    resp = await _post(desk, who, cid, {"priority": "urgent", "reason": "outage at the shop"})
    if not allowed:
        assert resp.status == 404  # another team's conversation is not disclosed
        assert await _priority(desk, cid) == before
        assert (await _activity(desk, who, cid)).status == 404
        return
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["priority"], body["previous_priority"]) == ("urgent", before)
    assert await _priority(desk, cid) == "urgent"
    log = await (await _activity(desk, who, cid)).json()
    assert log["priority"] == "urgent"
    entry = [e for e in log["entries"] if e["kind"] == "priority"][-1]
    name = desk.people[who].name
    assert (entry["who"], entry["actor_kind"], entry["actor_id"]) == (
        name,
        "agent",
        str(desk.people[who].id),
    )
    assert (entry["before"], entry["after"], entry["reason"]) == (
        before,
        "urgent",
        "outage at the shop",
    )


async def test_the_core_refuses_with_the_reason_and_nothing_changes(desk):
    await desk.login("agent_a")
    cid = (await desk.conversation(A))["conversation_id"]
    before = await _priority(desk, cid)
    cases = [
        ({"priority": "urgent"}, 400, "reason"),  # an agent must say why
        ({"priority": "blazing", "reason": "x"}, 400, "priority"),
        ({"priority": before, "reason": "same"}, 409, "priority"),
        ({"reason": "no level"}, 400, "priority"),
    ]
    for body, status, field in cases:
        resp = await _post(desk, "agent_a", cid, body)
        assert resp.status == status, (body, await resp.text())
        assert (await resp.json())["error"]["field"] == field
    assert await _priority(desk, cid) == before
    log = await (await _activity(desk, "agent_a", cid)).json()
    assert [e for e in log["entries"] if e["kind"] == "priority"] == []


async def test_a_change_announces_what_the_router_and_the_pages_hear(desk):
    await desk.login("supervisor")
    cid = (await desk.conversation(A))["conversation_id"]
    heard: list[tuple[str, dict]] = []

    async def note(event):
        heard.append((event.name, dict(event.data)))

    for name in (EventName.CONVERSATION_PRIORITY_CHANGED, EventName.ACTIVITY_APPENDED):
        desk.services.bus.subscribe(name, note)
    resp = await _post(desk, "supervisor", cid, {"priority": "high", "reason": "vip"})
    assert resp.status == 200
    await desk.settle()
    changed = [d for n, d in heard if n == EventName.CONVERSATION_PRIORITY_CHANGED]
    appended = [d for n, d in heard if n == EventName.ACTIVITY_APPENDED]
    assert [(d["conversation_id"], d["priority"], d["reason"]) for d in changed] == [
        (cid, "high", "vip")
    ]
    assert appended and appended[-1]["conversation_id"] == cid
    assert "priority" in appended[-1]["kinds"]


async def _tokens(desk) -> dict[str, dict[str, str]]:
    specs = {"rw": (None, False), "ro": (None, True), "b_rw": ([B], False)}
    out = {}
    for name, (inboxes, read_only) in specs.items():
        secret = await desk.store.write(
            lambda c, n=name, i=inboxes, r=read_only: create_token(c, n, inboxes=i, read_only=r)
        )
        out[name] = {"Authorization": f"Bearer {secret}"}
    return out


async def test_the_api_sets_the_priority_by_token_scope_and_pages_the_log(desk):
    tokens = await _tokens(desk)
    cid = (await desk.conversation(A))["conversation_id"]
    path = f"/api/v1/conversations/{cid}/priority"
    for token, status in (("ro", 403), ("b_rw", 404), (None, 401)):
        resp = await desk.client.post(
            path, json={"priority": "urgent"}, headers=tokens.get(token, {})
        )
        assert resp.status == status, (token, await resp.text())
    assert await _priority(desk, cid) == "normal"
    # a token need not give a reason; three changes make three entries
    for level in ("urgent", "low", "high"):
        resp = await desk.client.post(path, json={"priority": level}, headers=tokens["rw"])
        assert resp.status == 200, await resp.text()
    assert await _priority(desk, cid) == "high"

    log = f"/api/v1/conversations/{cid}/activity"
    seen, cursor = [], None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        resp = await desk.client.get(log, params=query, headers=tokens["ro"])
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    changes = [(e["before"], e["after"], e["who"]) for e in seen if e["kind"] == "priority"]
    assert changes == [
        ("normal", "urgent", "API token rw"),
        ("urgent", "low", "API token rw"),
        ("low", "high", "API token rw"),
    ]
    assert [e["id"] for e in seen] == sorted({e["id"] for e in seen})
    assert (await desk.client.get(log, headers=tokens["b_rw"])).status == 404
    bad = await desk.client.get(log, params={"limit": "0"}, headers=tokens["rw"])
    assert bad.status == 400
