"""Status and escalation of a conversation, from the workspace and over `/api/v1`
(`agent_ui.cases_api`), per role: an agent on their own team's conversation and on
another team's (404), a supervisor, an admin, tokens for every inbox, for one inbox and
read-only. Each goes through the one case action, so the store and the timeline show it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from inbox.store import cases as repo
from inbox.store.tokens import create as create_token


async def post(desk, who, path, body):
    desk.client.session.cookie_jar.clear()
    return await desk.client.post(path, data=json.dumps(body), headers=desk.headers(who))


def status_path(cid: int) -> str:
    return f"/agent/api/conversations/{cid}/status"


async def stored(desk, cid):
    return await desk.store.read(lambda conn: repo.load_case(conn, cid))


@pytest.mark.parametrize(
    ("who", "inbox", "code"),
    [
        ("agent_a", "inbox-a", 200),
        ("agent_a", "inbox-b", 404),
        ("agent_b", "inbox-a", 404),
        ("supervisor", "inbox-b", 200),
        ("admin", "inbox-a", 200),
    ],
)
async def test_each_role_sets_the_status_it_may(desk, who, inbox, code):
    await desk.login(who)
    cid = (await desk.conversation(inbox))["conversation_id"]
    resp = await post(desk, who, status_path(cid), {"status": "pending", "reason": "logs"})
    assert resp.status == code, await resp.text()
    case = await stored(desk, cid)
    if code == 200:
        body = await resp.json()
        assert (body["ok"], body["id"], body["status"]) == (True, cid, "pending")
        assert case.status == "pending"
        [entry] = await desk.store.read(lambda conn: repo.timeline(conn, cid))
        assert (entry.actor.id, entry.after, entry.reason) == (
            desk.people[who].id,
            "pending",
            "logs",
        )
    else:
        assert case.status == "open" and case.version == 0


async def test_every_status_an_agent_sets_and_what_is_refused(desk):
    await desk.login("agent_a")
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    path = status_path(cid)
    for status in ("on_hold", "pending", "open"):
        resp = await post(desk, "agent_a", path, {"status": status})
        assert resp.status == 200 and (await resp.json())["status"] == status
    resp = await post(desk, "agent_a", path, {"status": "snoozed"})
    assert resp.status == 400 and "until" in (await resp.json())["error"]["message"]
    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    resp = await post(desk, "agent_a", path, {"status": "snoozed", "until": until.isoformat()})
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "snoozed"
    assert datetime.fromisoformat(body["snoozed_until"]) == until
    raw = await post(desk, "agent_a", path, {"status": "bogus"})
    assert raw.status == 400
    resp = await post(desk, "agent_a", path, {"status": "solved"})
    assert resp.status == 200 and (await resp.json())["status"] == "resolved"
    resp = await post(desk, "agent_a", path, {"status": "closed"})
    assert resp.status == 200 and (await resp.json())["status"] == "closed"
    resp = await post(desk, "agent_a", path, {"status": "open"})
    assert resp.status == 409
    assert "closed conversation never changes" in (await resp.json())["error"]["message"]
    assert (await stored(desk, cid)).status == "closed"


async def test_the_old_resolve_still_solves(desk):
    await desk.login("agent_a")
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    resp = await post(desk, "agent_a", f"/agent/api/conversations/{cid}/resolve", {})
    assert resp.status == 200
    assert (await stored(desk, cid)).status == "solved"


async def test_an_agent_escalates_with_a_note_once(desk):
    await desk.login("agent_a")
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    path = f"/agent/api/conversations/{cid}/escalate"
    assert (await post(desk, "agent_a", path, {})).status == 400
    resp = await post(desk, "agent_a", path, {"note": "angry customer, need help"})
    assert resp.status == 200 and (await resp.json())["escalated"] is True
    assert (await post(desk, "agent_a", path, {"note": "again"})).status == 409
    listed = await desk.store.read(repo.escalated)
    assert [c.id for c in listed] == [cid]
    timeline = await desk.store.read(lambda conn: repo.timeline(conn, cid))
    assert timeline[-1].reason == "angry customer, need help"


@pytest.fixture
async def tokens(desk):
    made = {}
    for name, inboxes, read_only in (
        ("all", None, False),
        ("only-b", ["inbox-b"], False),
        ("reader", None, True),
    ):
        secret = await desk.store.write(
            lambda c, n=name, i=inboxes, r=read_only: create_token(c, n, inboxes=i, read_only=r)
        )
        made[name] = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    return made


@pytest.mark.parametrize(
    ("token", "code"), [("all", 200), ("only-b", 404), ("reader", 403), (None, 401)]
)
async def test_api_status_and_escalate_per_token(desk, tokens, token, code):
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    headers = tokens[token] if token else {"Content-Type": "application/json"}
    for path, body, check in (
        (f"/api/v1/conversations/{cid}/status", {"status": "on_hold"}, "status"),
        (f"/api/v1/conversations/{cid}/escalate", {"note": "third party late"}, "escalated"),
    ):
        resp = await desk.client.post(path, data=json.dumps(body), headers=headers)
        assert resp.status == code, await resp.text()
        if code == 200:
            answer = await resp.json()
            assert answer[check] in ("on_hold", True) and answer["id"] == cid
    case = await stored(desk, cid)
    if code == 200:
        assert case.status == "on_hold" and case.escalated
        timeline = await desk.store.read(lambda conn: repo.timeline(conn, cid))
        assert {e.actor.kind.value for e in timeline} == {"api_token"}
    else:
        assert case.status == "open" and not case.escalated


async def test_api_resolve_still_works(desk, tokens):
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    resp = await desk.client.post(f"/api/v1/conversations/{cid}/resolve", headers=tokens["all"])
    assert resp.status == 200 and (await resp.json())["status"] == "resolved"


async def test_the_escalations_page_lists_them_for_supervisors_only(desk):
    for who in ("agent_a", "supervisor", "admin"):
        await desk.login(who)
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    path = f"/agent/api/conversations/{cid}/escalate"
    assert (await post(desk, "agent_a", path, {"note": "needs a refund approval"})).status == 200
    for who, code in (("agent_a", 403), ("supervisor", 200), ("admin", 200)):
        desk.client.session.cookie_jar.clear()
        resp = await desk.client.get("/escalations", headers=desk.headers(who, json=False))
        assert resp.status == code
        html = await resp.text()
        if code == 200:
            assert f'data-id="{cid}"' in html and "needs a refund approval" in html
        else:
            assert "needs a refund approval" not in html


async def test_the_resolve_button_solves_through_the_case_action(desk):
    # the workspace's Resolve is the status control's "solved": on the activity log, the
    # version moved (and with it the auto-close time, kept by the same save)
    await desk.login("agent_a")
    cid = (await desk.conversation("inbox-a"))["conversation_id"]
    resp = await post(desk, "agent_a", f"/agent/api/conversations/{cid}/resolve", {})
    assert resp.status == 200, await resp.text()
    case = await stored(desk, cid)
    assert (case.status, case.version) == ("solved", 1)
    [entry] = await desk.store.read(lambda conn: repo.timeline(conn, cid))
    assert (entry.actor.id, entry.after) == (desk.people["agent_a"].id, "solved")
    again = await post(desk, "agent_a", f"/agent/api/conversations/{cid}/resolve", {})
    assert again.status == 409
    assert (await stored(desk, cid)).version == 1
