"""The routing API through the real web app, with the router service running beside it."""

from __future__ import annotations

import sqlalchemy as sa

from agent_ui.routing_api import ROUTING_KEY
from inbox.store import schema as t


async def test_messages_posted_to_the_api_land_with_the_right_agent(api):
    billing = await api.agent("bill", {"billing": 7})
    tech = await api.agent("tess", {"tech": 7})
    c1 = await api.message(1, skills=["billing"])
    c2 = await api.message(2, skills=["tech"])
    assert (await api.conv(c1))["assignee_id"] == billing
    assert (await api.conv(c2))["assignee_id"] == tech


async def test_queue_lists_waiting_in_routing_order(api):
    low = await api.message(1, priority="low")
    normal = await api.message(2, skills=["tech"])
    urgent = await api.message(3, priority="urgent")
    data = await api.call("GET", "/api/v1/queue")
    assert data["total"] == 3
    assert [r["conversation_id"] for r in data["data"]] == [urgent, normal, low]
    first, second = data["data"][0], data["data"][1]
    assert first["position"] == 1 and first["priority"] == "urgent"
    assert first["channel"] == "api" and second["skills"] == ["tech"]
    assert all(r["wait_seconds"] >= 0 and r["requeued"] is False for r in data["data"])
    assert len((await api.call("GET", "/api/v1/queue?limit=1"))["data"]) == 1
    # the router agrees on the order
    assert [w.conversation_id for w in api.router.router.waiting()] == [urgent, normal, low]


async def test_agents_and_presence(api):
    a = await api.agent("ann", {"billing": 3})
    c1 = await api.message(1)
    agents = (await api.call("GET", "/api/v1/agents"))["data"]
    assert [(x["id"], x["presence"], x["load"], x["assigned"]) for x in agents] == [
        (a, "online", {"api": 1}, 1)
    ]
    assert agents[0]["skills"] == {"billing": 3} and agents[0]["capacity"]["api"] == 2
    assert await api.call("PUT", f"/api/v1/agents/{a}/presence", {"presence": "away"}) == {
        "id": a,
        "presence": "away",
    }
    c2 = await api.message(2)
    assert (await api.conv(c2))["assignee_id"] is None
    assert (await api.conv(c1))["assignee_id"] == a
    await api.call("PUT", f"/api/v1/agents/{a}/presence", {"presence": "online"})
    assert (await api.conv(c2))["assignee_id"] == a


async def test_assign_unassign_transfer_resolve(api):
    a = await api.agent("ann", {"billing": 5}, chat=1)
    b = await api.agent("bob", {"tech": 5}, chat=1)
    c1 = await api.message(1)  # -> one of them
    c2 = await api.message(2)  # -> the other
    c3 = await api.message(3)  # waits: both full
    held = {(await api.conv(c))["assignee_id"]: c for c in (c1, c2)}
    assert set(held) == {a, b}
    # supervisor assign: at capacity needs force
    refused = await api.call("POST", f"/api/v1/conversations/{c3}/assign", {"agent_id": a}, 409)
    assert "capacity" in refused["error"]["message"] and refused["error"]["code"] == "conflict"
    body = await api.call(
        "POST", f"/api/v1/conversations/{c3}/assign", {"agent_id": a, "force": True}
    )
    assert body["assignee_id"] == a
    agents = {x["id"]: x for x in (await api.call("GET", "/api/v1/agents"))["data"]}
    assert agents[a]["load"] == {"api": 2}  # forced over its capacity of 1
    # unassign: back to the queue, ahead of fresh ones (ann is still full: 1 of 1)
    body = await api.call("POST", f"/api/v1/conversations/{c3}/unassign")
    assert body["assignee_id"] is None
    queue = (await api.call("GET", "/api/v1/queue"))["data"]
    assert queue[0]["conversation_id"] == c3 and queue[0]["requeued"] is True
    await api.call("POST", f"/api/v1/conversations/{c3}/unassign", status=409)
    # transfer to a skill: ann's conversation waits for a tech agent; ann pulls c3
    await api.call("POST", f"/api/v1/conversations/{held[a]}/transfer", {"skills": ["tech"]})
    waiting = (await api.call("GET", "/api/v1/queue"))["data"]
    assert [(r["conversation_id"], r["skills"]) for r in waiting] == [(held[a], ["tech"])]
    assert (await api.conv(c3))["assignee_id"] == a
    # transfer to a named agent who lacks the skill, or has no room: refused with the reason
    refused = await api.call(
        "POST", f"/api/v1/conversations/{held[a]}/transfer", {"agent_id": a}, 409
    )
    assert "lacks skills ['tech']" in refused["error"]["message"]
    refused = await api.call("POST", f"/api/v1/conversations/{c3}/transfer", {"agent_id": b}, 409)
    assert "no room" in refused["error"]["message"]
    # resolve frees bob, who pulls the tech conversation
    body = await api.call("POST", f"/api/v1/conversations/{held[b]}/resolve")
    assert body["status"] == "resolved" and body["assignee_id"] is None
    assert (await api.conv(held[a]))["assignee_id"] == b
    await api.call("POST", f"/api/v1/conversations/{held[b]}/resolve", status=409)
    await api.call("POST", f"/api/v1/conversations/{held[b]}/assign", {"agent_id": a}, 409)
    # a transfer to a named agent with room moves it
    await api.call("PUT", f"/api/v1/agents/{a}/presence", {"presence": "online"})
    await api.call("POST", f"/api/v1/conversations/{c3}/resolve")
    body = await api.call("POST", f"/api/v1/conversations/{held[b]}/transfer", {"agent_id": a}, 409)
    c4 = await api.message(4, skills=["tech"])  # bob is full: c4 waits
    assert (await api.conv(c4))["assignee_id"] is None
    body = await api.call("POST", f"/api/v1/conversations/{held[a]}/assign", {"agent_id": a})
    assert body["assignee_id"] == a  # supervisor: skills do not bind
    assert (await api.conv(c4))["assignee_id"] == b  # bob freed, pulls c4
    rows = await api.services.store.read(
        lambda conn: conn.execute(
            sa.select(t.assignments.c.conversation_id, sa.func.count())
            .where(t.assignments.c.ended_at.is_(None))
            .group_by(t.assignments.c.conversation_id)
        ).all()
    )
    assert all(n == 1 for _, n in rows)


async def test_bad_input_is_4xx_with_a_clear_message(api):
    a = await api.agent("ann")
    c1 = await api.message(1)
    cases = [
        ("POST", f"/api/v1/conversations/{c1}/assign", {}, 400, "'agent_id' is required"),
        ("POST", f"/api/v1/conversations/{c1}/assign", {"agent_id": "x"}, 400, "must be int"),
        ("POST", f"/api/v1/conversations/{c1}/assign", {"agent_id": 0}, 400, "positive"),
        (
            "POST",
            f"/api/v1/conversations/{c1}/assign",
            {"agent_id": a, "force": "yes"},
            400,
            "'force' must be bool",
        ),
        (
            "POST",
            f"/api/v1/conversations/{c1}/assign",
            {"agent_id": 999},
            404,
            "no active agent 999",
        ),
        ("POST", "/api/v1/conversations/999/assign", {"agent_id": a}, 404, "no conversation 999"),
        ("POST", "/api/v1/conversations/abc/assign", {"agent_id": a}, 400, "positive whole number"),
        ("POST", f"/api/v1/conversations/{c1}/transfer", {}, 400, "exactly one of"),
        (
            "POST",
            f"/api/v1/conversations/{c1}/transfer",
            {"agent_id": a, "skills": ["x"]},
            400,
            "exactly one of",
        ),
        ("POST", f"/api/v1/conversations/{c1}/transfer", {"skills": [1]}, 400, "skill names"),
        (
            "POST",
            f"/api/v1/conversations/{c1}/transfer",
            {"skills": "billing"},
            400,
            "must be list",
        ),
        ("PUT", f"/api/v1/agents/{a}/presence", {"presence": "busy"}, 400, "must be one of"),
        ("PUT", f"/api/v1/agents/{a}/presence", {}, 400, "'presence' is required"),
        ("PUT", "/api/v1/agents/999/presence", {"presence": "away"}, 404, "no active agent"),
        ("POST", "/api/v1/conversations/999/resolve", None, 404, "no conversation"),
    ]
    for method, path, body, status, words in cases:
        resp = await api.request(method, path, json=body, headers=api.auth)
        data = await resp.json()
        assert resp.status == status, (path, body, data)
        assert words in data["error"]["message"], (path, body, data)
    raw = await api.post(
        f"/api/v1/conversations/{c1}/assign",
        data="{nope",
        headers={**api.auth, "Content-Type": "application/json"},
    )
    assert raw.status == 400 and "malformed JSON" in (await raw.json())["error"]["message"]
    resp = await api.get("/api/v1/queue?limit=0", headers=api.auth)
    assert resp.status == 400
    # nothing above moved the conversation
    assert (await api.conv(c1))["assignee_id"] == a


async def test_every_routing_endpoint_needs_the_token(api):
    calls = [
        ("GET", "/api/v1/queue"),
        ("GET", "/api/v1/agents"),
        ("PUT", "/api/v1/agents/1/presence"),
        ("POST", "/api/v1/conversations/1/assign"),
        ("POST", "/api/v1/conversations/1/unassign"),
        ("POST", "/api/v1/conversations/1/transfer"),
        ("POST", "/api/v1/conversations/1/resolve"),
    ]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer odk_wrong"}):
            resp = await api.request(method, path, json={"presence": "online"}, headers=headers)
            assert resp.status == 401, (method, path)
            assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_moves_without_a_router_are_503_and_change_nothing(service):
    service.app[ROUTING_KEY].client.timeout = 0.3
    resp = await service.post("/api/v1/messages", json={"sender": "a@example.com", "text": "x"},
                              headers=service.auth)  # fmt: skip
    cid = (await resp.json())["conversation_id"]
    resp = await service.post(f"/api/v1/conversations/{cid}/unassign", headers=service.auth)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "router_unavailable"
    # facts still work: they are stored and a router reads them when it starts
    resp = await service.post(f"/api/v1/conversations/{cid}/resolve", headers=service.auth)
    assert resp.status == 200 and (await resp.json())["status"] == "resolved"
