"""A reply its channel cannot send is refused when submitted (422 `reply_refused`, with the
reason) and nothing is queued: an SMS over 1,600 characters, a number that texted STOP, an
email subject with a line break. The same reply on a channel it suits goes out (200)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from inbox.store import contacts
from inbox.store import schema as t

A = "inbox-a"


async def _reply(desk, cid: int, body: dict):
    desk.client.session.cookie_jar.clear()
    return await desk.client.post(
        f"/agent/api/conversations/{cid}/reply",
        data=json.dumps(body),
        headers=desk.headers("agent_a"),
    )


async def _outbound(desk, cid: int) -> int:
    return await desk.store.read(
        lambda c: c.execute(
            sa.select(sa.func.count())
            .select_from(t.messages)
            .where(t.messages.c.conversation_id == cid, t.messages.c.direction == "outbound")
        ).scalar_one()
    )


async def _refused(desk, cid: int, body: dict, words: str) -> None:
    before = await _outbound(desk, cid)
    resp = await _reply(desk, cid, body)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "reply_refused" and words in error["message"], error
    assert await _outbound(desk, cid) == before  # nothing queued


async def test_sms_over_1600_characters_is_refused_and_1600_goes(desk):
    await desk.login("agent_a")
    sms = await desk.conversation(A, channel="sms", sender="+14155550101", subject="")
    cid = sms["conversation_id"]
    await _refused(desk, cid, {"text": "x" * 1601}, "1600 characters; this one has 1601")
    resp = await _reply(desk, cid, {"text": "y" * 1600})
    assert resp.status == 200, await resp.text()
    assert await _outbound(desk, cid) == 1


async def test_an_opted_out_number_is_refused(desk):
    await desk.login("agent_a")
    sms = await desk.conversation(A, channel="sms", sender="+14155550102", subject="")
    cid = sms["conversation_id"]
    assert (await _reply(desk, cid, {"text": "before STOP"})).status == 200
    await desk.store.write(lambda c: contacts.set_opted_out(c, "+14155550102", True))
    await _refused(desk, cid, {"text": "after STOP"}, "opted out of SMS")
    await desk.store.write(lambda c: contacts.set_opted_out(c, "+14155550102", False))
    assert (await _reply(desk, cid, {"text": "after START"})).status == 200


async def test_an_email_subject_with_a_line_break_is_refused(desk):
    await desk.login("agent_a")
    mail = await desk.conversation(A, channel="email", sender="carla@example.com")
    cid = mail["conversation_id"]
    for subject in ("Re: help\nBcc: everyone@example.com", "Re: help\r\nX: y", "a\rb"):
        await _refused(desk, cid, {"text": "hi", "subject": subject}, "subject must be one line")
    resp = await _reply(desk, cid, {"text": "hi", "subject": "Re: help"})
    assert resp.status == 200, await resp.text()


async def test_a_long_chat_reply_is_not_held_to_the_sms_limit(desk):
    await desk.login("agent_a")
    chat = await desk.conversation(A, channel="chat", sender="visitor-1", subject="")
    cid = chat["conversation_id"]
    resp = await _reply(desk, cid, {"text": "z" * 2000})
    assert resp.status == 200, await resp.text()


async def test_the_api_reply_refuses_the_same_and_keeps_to_its_scope(desk):
    from inbox.store.tokens import create as create_token

    tokens = {}
    for name, inboxes, read_only in (
        ("rw", None, False),
        ("ro", None, True),
        ("b", ["inbox-b"], False),
    ):
        secret = await desk.store.write(
            lambda c, n=name, i=inboxes, r=read_only: create_token(c, n, inboxes=i, read_only=r)
        )
        tokens[name] = {"Authorization": f"Bearer {secret}"}
    sms = await desk.conversation(A, channel="sms", sender="+14155550103", subject="")
    cid = sms["conversation_id"]
    path = f"/api/v1/conversations/{cid}/reply"
    ann, bob = desk.people["agent_a"].id, desk.people["agent_b"].id
    cases = [
        ("ro", {"agent_id": ann, "text": "hi"}, 403),
        ("b", {"agent_id": ann, "text": "hi"}, 404),
        ("rw", {"agent_id": bob, "text": "hi"}, 400),  # Bob may not work on inbox A
        ("rw", {"text": "hi"}, 400),
        ("rw", {"agent_id": ann, "text": "x" * 1601}, 422),
    ]
    for token, body, status in cases:
        resp = await desk.client.post(path, json=body, headers=tokens[token])
        assert resp.status == status, (token, body, await resp.text())
    assert await _outbound(desk, cid) == 0
    resp = await desk.client.post(path, json={"agent_id": ann, "text": "hi"}, headers=tokens["rw"])
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["conversation_id"] == cid
    assert await _outbound(desk, cid) == 1
