"""Accept, claim and take-next over /api/v1 through the real web app with the router
beside it: a token acts for the agent its body names, within its inboxes; of two claims
at once exactly one wins and the other is answered 409 with the holder's name."""

from __future__ import annotations

import asyncio

from inbox.store.tokens import create as create_token


async def _claim(api, cid, agent_id, headers=None):
    return await api.post(
        f"/api/v1/conversations/{cid}/claim",
        json={"agent_id": agent_id},
        headers=headers or api.auth,
    )


async def test_claim_then_accept_and_take_next(api):
    ann = await api.agent("ann", presence="away")
    bob = await api.agent("bob", presence="away")
    first = await api.message(1)
    second = await api.message(2, priority="high")
    resp = await _claim(api, first, ann)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["assignee_id"] == ann and body["accepted_at"] is not None
    refused = await _claim(api, first, bob)
    assert refused.status == 409
    assert (await refused.json())["error"]["message"] == "ann already has this conversation"
    # accept: only the agent it is offered to
    not_offered = await api.post(
        f"/api/v1/conversations/{second}/accept", json={"agent_id": bob}, headers=api.auth
    )
    assert not_offered.status == 409
    taken = await api.call("POST", "/api/v1/queue/next", {"agent_id": bob})
    assert taken["id"] == second and taken["assignee_id"] == bob and taken["accepted_at"]
    nothing = await api.post("/api/v1/queue/next", json={"agent_id": bob}, headers=api.auth)
    assert nothing.status == 409


async def test_tokens_need_write_rights_and_reach_only_their_inboxes(api):
    ann = await api.agent("ann", presence="away")
    cid = await api.message(1)
    store = api.services.store
    reader = await store.write(lambda conn: create_token(conn, "reader", read_only=True))
    elsewhere = await store.write(lambda conn: create_token(conn, "sales", inboxes=["sales"]))
    denied = await _claim(api, cid, ann, {"Authorization": f"Bearer {reader}"})
    assert denied.status == 403
    hidden = await _claim(api, cid, ann, {"Authorization": f"Bearer {elsewhere}"})
    assert hidden.status == 404
    anon = await api.post(f"/api/v1/conversations/{cid}/claim", json={"agent_id": ann})
    assert anon.status == 401
    assert (await api.conv(cid))["assignee_id"] is None


async def test_two_claims_at_once_over_http_one_wins(api):
    ann = await api.agent("ann", presence="away")
    bob = await api.agent("bob", presence="away")
    for n in range(3):
        cid = await api.message(10 + n)
        answers = await asyncio.gather(_claim(api, cid, ann), _claim(api, cid, bob))
        statuses = sorted(r.status for r in answers)
        assert statuses == [200, 409], statuses
        loser = next(r for r in answers if r.status == 409)
        winner = (await next(r for r in answers if r.status == 200).json())["assignee_id"]
        name = "ann" if winner == ann else "bob"
        assert (await loser.json())["error"]["message"] == f"{name} already has this conversation"
