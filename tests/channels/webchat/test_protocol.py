"""The /widget protocol through python-socketio's AsyncClient against the real app."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
import socketio
from webchat_support import IDENTITY_SECRET, wait_for

from channels.webchat import identity_hash
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind


def rows(db: str, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def test_ack_comes_after_the_commit(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    hello = await visitor.hello()
    assert hello["messages"] == [] and hello["config"]["greeting"] == "Hello from the shop"
    vid = hello["visitor_id"]
    for n in range(3):
        client_id = str(uuid.uuid4())
        ack = await visitor.say(client_id, f"hello {n}")
        assert ack["ok"] and not ack["duplicate"]
        # read the database file from another connection the moment the ack arrives
        stored = rows(
            chat_service.db,
            "SELECT id, text FROM messages WHERE channel='chat' AND external_id=?",
            f"{vid}:{client_id}",
        )
        assert stored == [(ack["seq"], f"hello {n}")]


async def test_retried_client_id_is_stored_once(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    hello = await visitor.hello()
    client_id = str(uuid.uuid4())
    first = await visitor.say(client_id, "only once")
    again = await visitor.say(client_id, "only once")
    assert first["ok"] and again["ok"] and again["duplicate"] and again["seq"] == first["seq"]
    # a retry after a reconnect (same visitor token, new socket) is deduplicated too
    await visitor.sio.disconnect()
    back = await connect_visitor(chat_service.url, token=hello["token"])
    assert (await back.hello())["visitor_id"] == hello["visitor_id"]
    third = await back.say(client_id, "only once")
    assert third["duplicate"] and third["seq"] == first["seq"]
    count = rows(
        chat_service.db, "SELECT count(*) FROM messages WHERE external_id LIKE ?", f"%{client_id}"
    )
    assert count == [(1,)]


async def test_returning_visitor_sees_history_and_agent_replies_live(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    hello = await visitor.hello()
    ack = await visitor.say(str(uuid.uuid4()), "where is my order?")
    conversation_id = rows(
        chat_service.db, "SELECT conversation_id FROM messages WHERE id=?", ack["seq"]
    )[0][0]
    stranger = await connect_visitor(chat_service.url)
    await stranger.hello()

    store = chat_service.services.store
    reply_id = await store.write(
        lambda c: enqueue(
            c,
            conversation_id=conversation_id,
            text="On its way: https://track.example/1",
            author_kind=AuthorKind.AGENT,
        )
    )
    chat_service.services.outbox.poke()
    await wait_for(lambda: visitor.pushed())
    live = visitor.pushed()[0]
    assert (
        live["seq"] == reply_id
        and live["author"] == "agent"
        and live["text"].startswith("On its way")
    )
    assert stranger.pushed() == []  # another visitor's room

    # the emit happens inside the send; the outbox records the result right after it
    def status():
        return rows(
            chat_service.db,
            "SELECT delivery_status, provider_id FROM messages WHERE id=?",
            reply_id,
        )

    await wait_for(lambda: status()[0][0] != "queued")
    assert status() == [("sent", f"webchat:{reply_id}")]

    # a returning visitor (same token, new page) gets the whole history, in order
    await visitor.sio.disconnect()
    back = await connect_visitor(chat_service.url, token=hello["token"])
    history = (await back.hello())["messages"]
    assert [(m["seq"], m["author"]) for m in history] == [
        (ack["seq"], "visitor"),
        (reply_id, live["author"]),
    ]
    # read receipt: the outbound message becomes read
    await back.call("read", {"seq": reply_id})
    await wait_for(
        lambda: (
            rows(chat_service.db, "SELECT delivery_status FROM messages WHERE id=?", reply_id)
            == [("read",)]
        )
    )


async def test_forged_visitor_token_gets_a_new_empty_identity(chat_service, connect_visitor):
    victim = await connect_visitor(chat_service.url)
    hello = await victim.hello()
    await victim.say(str(uuid.uuid4()), "private")
    vid, issued, mac = hello["token"].split(".")
    forged = f"{vid}.{issued}.{'A' * len(mac)}"
    attacker = await connect_visitor(chat_service.url, token=forged)
    seen = await attacker.hello()
    assert seen["visitor_id"] != vid and seen["messages"] == []


@pytest.mark.parametrize(
    "origin", ["http://evil.example", None, "http://shop.example.evil.example"]
)
async def test_foreign_origin_is_refused(chat_service, connect_visitor, origin):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_visitor(chat_service.url, origin=origin)


async def test_unknown_widget_is_refused(chat_service, connect_visitor):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_visitor(chat_service.url, widget="nope")


async def test_forged_identity_is_refused_and_a_verified_one_links_the_contact(
    chat_service, connect_visitor
):
    for bad in ("0" * 64, identity_hash("wrong-secret-0123456789", "user-42"), None):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect_visitor(chat_service.url, user_id="user-42", user_hash=bad)
    assert rows(chat_service.db, "SELECT count(*) FROM identities WHERE kind='external'") == [(0,)]

    good = identity_hash(IDENTITY_SECRET, "user-42")
    first = await connect_visitor(chat_service.url, user_id="user-42", user_hash=good)
    assert (await first.hello())["verified"] is True
    await first.say(str(uuid.uuid4()), "from my laptop")
    # the same user on another device (a new anonymous visitor id) joins the same contact
    second = await connect_visitor(chat_service.url, user_id="user-42", user_hash=good.upper())
    history = await second.hello()
    assert [m["text"] for m in history["messages"]] == ["from my laptop"]
    await second.say(str(uuid.uuid4()), "from my phone")
    idents = rows(chat_service.db, "SELECT kind, verified, contact_id FROM identities ORDER BY id")
    assert {(k, v) for k, v, _ in idents} == {("visitor", 0), ("external", 1)}
    assert len({c for _, _, c in idents}) == 1 and len(idents) == 3


@pytest.mark.webchat(rate_limit=3, rate_window_seconds=60)
async def test_rate_limit_refuses_clearly_and_loses_nothing_acked(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    hello = await visitor.hello()
    ids = [str(uuid.uuid4()) for _ in range(4)]
    acks = [await visitor.say(cid, f"m{n}") for n, cid in enumerate(ids)]
    assert [a["ok"] for a in acks] == [True, True, True, False]
    refused = acks[3]
    assert refused["error"] == "rate_limited" and refused["retry_after"] >= 1
    assert "too quickly" in refused["message"]
    # a retry of an already acked message is still answered (never refused by the limit)
    assert (await visitor.say(ids[0], "m0"))["duplicate"] is True
    stored = rows(
        chat_service.db, "SELECT external_id FROM messages WHERE channel='chat' ORDER BY id"
    )
    assert stored == [(f"{hello['visitor_id']}:{cid}",) for cid in ids[:3]]


@pytest.mark.webchat(max_message_chars=50)
async def test_message_length_cap(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    await visitor.hello()
    ack = await visitor.say(str(uuid.uuid4()), "x" * 51)
    assert ack == {
        "ok": False,
        "error": "too_long",
        "limit": 50,
        "message": "Your message is too long: at most 50 characters.",
    }
    assert (await visitor.say(str(uuid.uuid4()), "x" * 50))["ok"]


@pytest.mark.webchat(max_connections_per_ip=3)
async def test_connection_cap_per_address(chat_service, connect_visitor):
    first = [await connect_visitor(chat_service.url) for _ in range(3)]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_visitor(chat_service.url)
    await first[0].sio.disconnect()
    await wait_for(
        lambda: (
            chat_service.services.sio.namespace_handlers["/widget"].connections.count("127.0.0.1")
            == 2
        )
    )
    await connect_visitor(chat_service.url)  # a slot is free again


async def test_followup_email_is_a_contact_attribute_not_an_identity(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    await visitor.hello()
    assert (await visitor.call("profile", {"email": "not an address"}))["ok"] is False
    assert (
        await visitor.call("profile", {"name": "Ann", "email": "Ann@Example.com", "consent": True})
    )["ok"]
    await visitor.say(str(uuid.uuid4()), "please mail me")
    attrs = rows(chat_service.db, "SELECT name, attributes FROM contacts")
    assert attrs[0][0] == "Ann" and '"email_for_followup": "ann@example.com"' in attrs[0][1]
    assert rows(chat_service.db, "SELECT count(*) FROM identities WHERE kind='email'") == [(0,)]


async def test_private_notes_never_reach_the_visitor(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    hello = await visitor.hello()
    ack = await visitor.say(str(uuid.uuid4()), "hi")
    conn = sqlite3.connect(chat_service.db)
    conn.execute(
        "INSERT INTO messages (conversation_id, direction, author_kind, channel, text, attachments, "
        "delivery_status, meta, needs_triage, created_at) SELECT conversation_id, 'outbound', 'agent', "
        "'chat', 'internal note', '[]', 'note', '{}', 0, created_at FROM messages WHERE id=?",
        (ack["seq"],),
    )
    conn.commit()
    conn.close()
    again = await connect_visitor(chat_service.url, token=hello["token"])
    assert [m["text"] for m in (await again.hello())["messages"]] == ["hi"]
